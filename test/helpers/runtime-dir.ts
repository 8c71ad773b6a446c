/**
 * Every test file gets its own runtime directory for pool locks (model/pool-locks.ts), removed
 * with its scratch directories: tests never leave lock files in /run/qvol, and files that
 * run one after another never see each other's.
 */
import { scratchDir } from './scratch.js';

process.env.QVOL_RUN_DIR = scratchDir('run');
