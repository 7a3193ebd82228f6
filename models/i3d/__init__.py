"""I3D itself: the network (`network.py`), the checkpoint it is read from, the SavedModel and OpenVINO IRs
made from it (`convert.py`, `irs.py`), windows pooled from its trunk (`trunk.py`), its int8 (`int8_stem.py`,
`quantize.py`) and the accuracy rule a faster build must pass against float32 TensorFlow (`accuracy.py`).
It imports no runtime and no recognition: they stand on it."""
