"""Command-line arguments shared by every command that takes a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError


class _DeprecatedConfig(argparse.Action):
    """``--config``: the old spelling of ``--official-config`` (still accepted, with a note)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print("note: --config is deprecated here, use --official-config (a bupose recipe is "
              "the positional argument of `bupose train`)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """``--model NAME``, ``--checkpoint PATH``, ``--official-config YAML`` (old spelling
    ``--config``), ``--num-keypoints K``, ``--spec NAME_OR_FILE`` (read back by
    ``model_from_args``; the official YAML is ``args.config``)."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", metavar="NAME", default=None,
                   help="a registered model (`bupose models`): randomly initialised unless "
                        "--checkpoint gives weights")
    g.add_argument("--checkpoint", type=checkpoint_arg, metavar="PATH|zoo:NAME|URL",
                   default=None,
                   help="weights: a bupose checkpoint, official HigherHRNet/fusion .pth "
                        "(with --official-config), an mmpose 0.x checkpoint, zoo:NAME (`bupose "
                        "models --zoo`: downloaded, verified and cached with its config) or an "
                        "http(s) URL (cached in $BUPOSE_CACHE)")
    g.add_argument("--official-config", dest="config", type=Path, metavar="YAML", default=None,
                   help="the official HigherHRNet experiment YAML of official weights "
                        "(architecture and TEST settings)")
    g.add_argument("--config", dest="config", type=Path, action=_DeprecatedConfig,
                   default=None, help=argparse.SUPPRESS)
    g.add_argument("--num-keypoints", type=int, metavar="K", default=None,
                   help="keypoints per person (default: the spec's, the checkpoint's, else 17)")
    g.add_argument("--spec", metavar="NAME_OR_FILE", default=None,
                   help="keypoint spec: coco17, crowdpose14, mpii16, aic14, ochuman17 or a "
                        "YAML/JSON file")


def checkpoint_arg(text: str) -> Path | str:
    """``--checkpoint`` values: ``zoo:NAME`` and URLs stay strings, anything else is a path."""
    from bupose.hub import is_remote

    return text if is_remote(text) else Path(text)


def model_from_args(args: argparse.Namespace, use_default: bool = False) -> Any:
    """The model the arguments of ``add_model_args`` name, with ``.meta`` (eval mode when
    weights are loaded). ``zoo:NAME`` / URL checkpoints are fetched into the cache first and
    bring their config (``--official-config`` still wins). With ``use_default`` and no model
    given, the shipped default model (``bupose.hub.DEFAULT_MODEL``), announced in one line."""
    from bupose.models import create_model
    from bupose.models.checkpoint import load_checkpoint, model_from_official_config
    from bupose.models.posenet import ModelMeta
    from bupose.structures.spec import load_spec

    spec = load_spec(args.spec) if getattr(args, "spec", None) else None
    k = getattr(args, "num_keypoints", None)
    if k is not None and spec is not None and k != spec.num_keypoints:
        raise ConfigError(f"--num-keypoints {k} but spec {spec.name!r} has "
                          f"{spec.num_keypoints} keypoints")
    if args.checkpoint is None and args.model is None and args.config is None and use_default:
        from bupose.hub import DEFAULT_MODEL, default_model_note

        print(default_model_note(), file=sys.stderr)
        args.checkpoint = DEFAULT_MODEL
    if args.checkpoint is not None:
        from bupose.hub import resolve_checkpoint

        found = resolve_checkpoint(args.checkpoint)
        return load_checkpoint(found.path, args.config or found.config, model=args.model,
                               spec=spec,
                               num_keypoints=k or (spec.num_keypoints if spec else None))
    if args.model is not None:
        kwargs = {} if k is None else {"num_keypoints": k}
        return create_model(args.model, spec=spec, **kwargs)
    if args.config is not None:
        model = model_from_official_config(args.config)
        if spec is not None:
            if spec.num_keypoints != model.num_keypoints:
                raise ConfigError(f"{args.config}: the model has {model.num_keypoints} "
                                  f"keypoints but spec {spec.name!r} has {spec.num_keypoints}")
            m = model.meta
            model.meta = ModelMeta(m.name, m.kwargs, spec, m.input_size, m.test, m.source)
        return model
    raise ConfigError("no model given: use --model NAME (see `bupose models`) or "
                      "--checkpoint PATH [--official-config YAML]")
