"""Running I3D: one interface (`extractor.py`), one module per runtime, `tensorflow` (the SavedModel; CUDA
GPUs, training's source of truth) and `openvino` (CPUs: float32, bfloat16 on AMX, int8 from NNCF), and the
factory that opens the one this hardware gets (`factory.py`; the choices are `models.hardware`'s)."""
