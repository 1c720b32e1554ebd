"""Show or change the hyper-parameters stored in a training checkpoint before resuming from it.

LightningCLI (lightning >= 2.5) re-applies the hyper-parameters saved in `--ckpt_path` over the YAML config, so
a changed learning-rate schedule in the config is ignored on resume; change it in the checkpoint instead:

    python scripts/ckpt_hparams.py runs/speech-16k/checkpoints/last.ckpt                       # show
    python scripts/ckpt_hparams.py last.ckpt decay_start=4000 decay_steps=3000 -o resume.ckpt  # change
    OMP_NUM_THREADS=1 mediatok train fit --config configs/audio/speech-16k-cpu.yaml --ckpt_path resume.ckpt

Training checkpoints are our own files (they hold optimizer state and are unpickled with weights_only=False);
never run this on a checkpoint from someone else.
"""
from __future__ import annotations

import argparse
import ast

import torch


def main(argv: list[str] | None = None) -> None:
    """Print the hyper-parameters, or write a copy with KEY=VALUE changes."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("changes", nargs="*", help="KEY=VALUE (VALUE as a Python literal)")
    p.add_argument("-o", "--output", help="where to write the changed checkpoint (required with changes)")
    a = p.parse_args(argv)
    ckpt = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    hp = ckpt["hyper_parameters"]
    if not a.changes:
        print(f"global_step {ckpt['global_step']}, generator steps {int(ckpt['state_dict']['steps'])}")
        for k, v in hp.items():
            print(f"{k}: {v}")
        return
    if not a.output:
        raise SystemExit("pass -o OUTPUT.ckpt to write the changed checkpoint")
    for change in a.changes:
        key, _, value = change.partition("=")
        if key not in hp:
            raise SystemExit(f"unknown hyper-parameter {key!r}; known: {', '.join(hp)}")
        hp[key] = ast.literal_eval(value)
    torch.save(ckpt, a.output)
    print(f"wrote {a.output}")


if __name__ == "__main__":
    main()
