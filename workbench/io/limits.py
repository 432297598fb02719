"""Limits on untrusted inputs (see shared/RELIABILITY.md)."""

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
IMAGE_FORMATS = ("PNG", "JPEG")

MAX_SAFETENSORS_BYTES = 250 * 1024 * 1024
MAX_SAFETENSORS_HEADER = 1024 * 1024
MAX_SAFETENSORS_TENSORS = 2000
SAFETENSORS_DTYPES = ("F32", "F16", "BF16")

# EEG recordings (workbench.io.eeg; see shared/RELIABILITY.md section 2.3)
MAX_EEG_BYTES = 512 * 1024 * 1024  # file size of a .mat / .edf / .bdf / .fif
MAX_EEG_DECODED_BYTES = 512 * 1024 * 1024  # the float32 arrays the file decodes to
MAX_EEG_CHANNELS = 256
MAX_EEG_SAMPLES_PER_RECORD = 65536
MAX_EEG_RECORD_SECONDS = 60.0
MAX_EEG_SECONDS = 4 * 3600.0
MAX_EEG_WINDOWS = 5000
EEG_FORMATS = (".mat", ".edf", ".bdf", ".fif")

# user data sets (workbench.data.user): a folder of images, an .npz/.npy array, an EDF/BDF recording
MAX_DATASET_SAMPLES = 20000  # samples one data id may name
MAX_FOLDER_ENTRIES = 50000  # directory entries scanned under an image folder (bounds the walk)
MAX_FOLDER_BYTES = 2 * 1024 * 1024 * 1024  # total size of the image files of one folder
MAX_ARRAY_BYTES = 1024 * 1024 * 1024  # an .npy file, or one member of an .npz, as decoded
MAX_ARRAY_FILE_BYTES = 1024 * 1024 * 1024  # the .npz / .npy file on disk
ARRAY_DTYPES = "biufU"  # numpy dtype kinds accepted in user arrays (bool, int, uint, float; text for names)
MAX_NPZ_MEMBERS = 4096  # arrays in one .npz (bounds the zip central directory parsed)
MAX_NPZ_DIRECTORY_BYTES = 4 * 1024 * 1024  # the zip central directory of an .npz
DEFLATE_MAX_RATIO = 1032  # the most deflate can expand (RFC 1951: 258-byte matches from 2-bit codes)

# saved results (workbench.core.result / result_schema): result.json + arrays.npz of a result folder
MAX_RESULT_JSON_BYTES = 64 * 1024 * 1024
MAX_RESULT_JSON_DEPTH = 64  # nesting of result.json (json.loads recurses: deeper is a RecursionError)
MAX_RESULT_ARRAYS_FILE_BYTES = 2 * 1024 * 1024 * 1024  # arrays.npz on disk
MAX_RESULT_ARRAY_BYTES = 1024 * 1024 * 1024  # one array of a result, as decoded
MAX_RESULT_ARRAYS_BYTES = 2 * 1024 * 1024 * 1024  # all arrays of one result, as decoded
RESULT_DTYPES = "biufcUSmM"  # numpy dtype kinds a result may store (never objects or structured records)

# other files read on a user's word
MAX_USER_CODE_BYTES = 16 * 1024 * 1024  # a --model FILE.py (trusted code, but it must not hang or flood)
MAX_CHECKPOINT_BYTES = 4 * 1024 * 1024 * 1024  # a pinned zoo/package checkpoint, hashed in chunks
MAX_NOTE_BYTES = 64 * 1024  # the JSON note beside a stored user upload
