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
