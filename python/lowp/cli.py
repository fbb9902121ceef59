"""The ``lowp`` command line: ``lowp info`` (also ``python -m lowp info``)."""

from __future__ import annotations

import argparse
import sys


def _info(_: argparse.Namespace) -> int:
    import lowp

    info = lowp.cpu_info()
    print(f"lowp {lowp.__version__}")
    print(f"arch:     {info['arch']}")
    print(f"features: {' '.join(info['features']) or '-'}")
    print(f"paths:    {' '.join(info['paths'])}")
    print(f"path:     {info['path']}")
    print(f"threads:  {info['threads']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lowp", description="Exact uint8 integer kernels for quantized inference."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="print the CPU, the ISA paths and the active path and threads")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"info": _info}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
