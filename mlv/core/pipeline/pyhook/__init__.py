"""Start-up code for the Python processes of pipeline stages (see stage_env.py); this folder
is put on their PYTHONPATH, never imported by mlv itself."""
