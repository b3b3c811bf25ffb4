"""ophsd: on-policy harness self-distillation (the trainer)."""

__version__ = "0.1.0"
