"""``bupose export --checkpoint CKPT --format onnx|torchscript --out FILE``: the network alone
(images in, output maps out) as an ONNX or TorchScript file, then a parity check.

The input is (B, 3, H, W) normalised float32; H x W is the --input-size (default the model's) and
fixed unless --dynamic (the batch axis is always free). After writing (atomically), the file is
run on random inputs and compared with PyTorch: the max |difference| of the maps is printed and
must be <= 1e-4 (exit status 1 otherwise; the file is kept for inspection). Run the file with
``bupose infer --onnx FILE`` (ONNX or TorchScript; same test-time pipeline and decoders).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from bupose.cli.common import add_model_args

    p = subparsers.add_parser(
        "export", help="export the network to ONNX or TorchScript (with a parity check)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    p.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                   help="file format (default onnx)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="file to write")
    p.add_argument("--input-size", type=parse_size, default=None, metavar="N|HxW",
                   help="export input size (default: the model's input size)")
    p.add_argument("--dynamic", action="store_true",
                   help="free input height and width (default: fixed to --input-size)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the parity check")
    p.set_defaults(func=run)


def parse_size(text: str) -> int | tuple[int, int]:
    """``N`` -> N (square) or ``HxW`` -> (H, W)."""
    try:
        parts = [int(v) for v in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not N or HxW: {text!r}") from None
    if len(parts) not in (1, 2) or any(v <= 0 for v in parts):
        raise argparse.ArgumentTypeError(f"not N or HxW with positive sizes: {text!r}")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def run(args: argparse.Namespace) -> int:
    from bupose.cli.common import model_from_args
    from bupose.export import check_parity, export_model, input_hw, parity_sizes

    model = model_from_args(args, use_default=True).eval()  # no model: the shipped default
    hw = input_hw(model, args.input_size)
    path = export_model(model, args.out, args.format, hw, args.dynamic, args.opset)
    size = path.stat().st_size / 2**20
    print(f"wrote {path} ({args.format}, {size:.1f} MB, input (B, 3, {hw[0]}, {hw[1]})"
          f"{', dynamic H/W' if args.dynamic else ''})")
    if not args.check:
        return 0
    result = check_parity(model, path, parity_sizes(hw, args.dynamic))
    print(result.describe())
    if not result.ok():
        print(f"error: {path} differs from the PyTorch model by more than the tolerance",
              file=sys.stderr)
        return 1
    return 0
