"""Resumable uploads (tus 1.0) for big files: the store on disk (store.py), a PATCH's body written into it
(receive.py), and their life in the app (lifecycle.py). The routes are api/routes/uploads.py."""
