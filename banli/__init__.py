"""Process-level wiring: settings, the CLI, the dispatcher, the worker and the jobs they run."""
