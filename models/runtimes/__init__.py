"""One module per runtime behind `models.extractor`'s interface: `tensorflow` (the SavedModel; CUDA GPUs,
training's source of truth) and `openvino` (CPUs: float32, bfloat16 on AMX, int8 from NNCF)."""
