"""The ML core, shared by serving and training, with no web framework:

- `i3d/` the network, its weights, its builds (SavedModel, OpenVINO IRs, int8) and the accuracy rule they pass;
- `runtimes/` I3D behind one interface, one module per runtime, chosen by the hardware;
- `recognition/` a video or a live stream -> ranked actions: windows, the shared inference thread, heads;
- `training/` labelled videos -> cached features -> a trained LSTM head;
- `video.py`, `containers.py`, `labels.py`, `paths.py` what all of them read; `__main__.py` the CLI.
"""
