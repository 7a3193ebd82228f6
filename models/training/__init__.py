"""Training a sequence head: labelled video lists (`datasets.py`), cached per-video I3D features
(`features.py`), and fitting and evaluating the LSTM (`trainer.py`)."""
