/** The qvol library: everything a caller needs, by name. The CLI is `qvol/cli`. */
export { copyVolume, type CopyOptions, type CopyResult, type CopyProgress, type CopyMethod, type Mode } from './io/copy.js';
export { mapExtents, fiemap, FIEMAP_EXTENT_SHARED, FIEMAP_EXTENT_UNWRITTEN, type Extent, type FiemapExtent } from './io/extents.js';
export { zeroOut } from './io/zero.js';
export { waitForDevice, waitForPath, isDeviceInUse, type WaitOptions } from './io/wait.js';
export { blockDeviceInfo, type BlockDeviceInfo } from './io/blockdev.js';
export { atomicWriteFile, fsyncDir } from './io/atomic.js';
export { capabilities } from './io/capabilities.js';
export { QvolError, UsageError, CancelledError, CopyError, StreamError, UnsupportedFormatError, PassphraseError, ERROR_CODES, type ErrorCode, type CopyErrorCode, type StreamErrorCode } from './errors/index.js';
export { exportStream, type StreamExportOptions, type StreamExportResult } from './io/streams/export.js';
export { importStream, readStreamHeader, sparseImageSize, type SparseHeader, type StreamImportOptions, type StreamImportResult } from './io/streams/import.js';
export { exportVolume, importVolume, transferFormatsOf, type ExportOptions, type ImportOptions, type TransferEnd, type TransferSummary } from './app/transfer.js';
export type { StreamFormat, StreamSummary } from './io/streams/format.js';
export { SystemError, isSystemError } from './native/errors.js';
export { AddonLoadError } from './native/binding.js';
export { VERSION } from './version.js';
export { parseSize, formatBytes } from './util/size.js';
export { QvolApp, type OpenOptions, type StartedDevice, type CloneResult, type RecoverResult, type VolumeInfo } from './app/app.js';
export { Registry } from './app/registry.js';
export { STATE_VERSION, type VmRecord, type VmClass, type State } from './app/state.js';
export { Pool, type VmRef, type VolumeRequest, type UsageDetails } from './model/pool.js';
export { Volume, encryptedVolumePath, type VolumeConfig, type VolumeType, type BlockDevice, type ImportReport } from './model/volume.js';
export { ReflinkPool } from './drivers/file-reflink/pool.js';
export { ReflinkVolume } from './drivers/file-reflink/volume.js';
export { ZfsPool } from './drivers/zfs/pool.js';
export { ZfsEncryptedPool } from './drivers/zfs/encrypted-pool.js';
export { ZfsVolume } from './drivers/zfs/volume.js';
export { detachedKeyUnloadTimer, inProcessKeyUnloadTimer } from './drivers/zfs/key-unload.js';
export type { DriverContext, KeyUnloadTimer, PassphraseProvider, PassphraseRequest } from './model/driver-context.js';
export { GENERIC_FORMATS, commonFormats, formatsOf, type VolumeFeature, type VolumeCapabilities, type NativeFormat } from './model/features.js';
export { resolveRevision, revisionsToPrune } from './model/revisions.js';
export { createPool, driverNames, driverParameters, embeddedPoolOptions } from './drivers/registry.js';
export {
  StoragePoolException, QubesValueError, QubesVMNotHaltedError, QubesVMError, QubesPoolInUseError,
  RevisionNotFoundError, NotImplementedError,
} from './errors/index.js';
