/**
 * What the caller gives the drivers, so that no driver holds a user interface or guesses
 * what kind of process it runs in: how to ask for a passphrase (a terminal for the CLI, a
 * command or socket for a daemon) and how to time a key unload (a detached process for a
 * one-shot command, an in-process timer for a long-lived one).
 */

export interface PassphraseRequest {
  /** The qvol pool that needs it. */
  pool: string;
  /** The encryption root it unlocks. */
  dataset: string;
}

/** Resolves to the passphrase, or rejects (PassphraseError) when there is none to be had. */
export type PassphraseProvider = (request: PassphraseRequest) => Promise<string>;

/** Unloads an encryption root's key `seconds` after arm(), unless cancel() comes first. */
export interface KeyUnloadTimer {
  arm(encryptionRoot: string, seconds: number): Promise<void>;
  cancel(encryptionRoot: string): Promise<void>;
}

export interface DriverContext {
  passphrase?: PassphraseProvider;
  keyUnload?: KeyUnloadTimer;
}
