"""Siamese fine-tuning (contrastive, triplet, BCE, supervised contrastive); its checkpoints load as `siamese@DIR`.

Imports pipeline.core, encoders, store, metrics, index, datasets and search (never evaluation). Nothing is imported
here, so that `finetune.config` (the settings and choices the CLI offers) loads without the [train] extra. Public API,
by module: `run.run_finetune(config.FinetuneConfig(...), device, store)` for the whole run; the stages it composes
are `data.load_training_data`, `losses.create_loss` (a registry: `losses.list_losses`), `train.train` and
`pipeline.encoders.siamese.checkpoint.write_checkpoint`, with `curves.write_curves`; `copies.make_copy_set` makes
the self-supervised views for `--data copies:SOURCE`.
"""
