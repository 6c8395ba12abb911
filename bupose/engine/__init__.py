"""Training engine: ``train.fit`` (the loop), ``step`` (one optimiser step), ``checkpoint``
(training state), ``dist`` (torchrun helpers), ``schedule`` (learning rate), ``log`` (JSONL and
TensorBoard), ``evaluate`` (validation), ``tasks`` (per-method dataset/loss/predictor builders).

This is the only package that reads ``ExperimentCfg``; import its modules directly.
"""
