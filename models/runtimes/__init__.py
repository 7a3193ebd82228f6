"""Running I3D: one interface (`extractor.py`) and one module per runtime, `tensorflow` (the SavedModel; CUDA
GPUs, training's source of truth) and `openvino` (CPUs: float32, bfloat16 on AMX, int8 from NNCF); the
runtime, precision and stem this hardware gets (`precision.py`); TensorFlow's quiet import (`tensorflow_env.py`)."""
