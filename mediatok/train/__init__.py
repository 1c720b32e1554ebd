"""Training: one `CodecModule` for every family, with per-media pieces chosen by class path in configs/<media>/*.yaml.

    module.py     CodecModule (manual optimisation, optional GAN phase) and its contract
    losses.py     LossSet / LossWeights: what a family's loss set provides
    gan.py        least-squares GAN and feature-matching losses for any discriminator
    schedule.py   WarmupCosine learning-rate schedule (a pure function of the step)
    callbacks.py  media-independent callbacks (codebook usage, step timer)
    export.py     training checkpoint -> checkpoint folder through the family registry
    cli.py        `mediatok train fit --config ...` (LightningCLI)
    audio/        audio's losses, discriminators, data module, callbacks and entropy-model fit
"""
