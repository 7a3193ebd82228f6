"""From frames to ranked actions: a video's windows run clip by clip (`windows.py`) or pooled from one shared
trunk (`shared_trunk.py`) on the one inference thread (`batching.py`), ranked by a head (`heads.py`) for
files (`recognizer.py`) and live streams (`live.py`)."""
