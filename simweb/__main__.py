"""``python -m simweb --port N --day D [--delay-scale X]``: serve until killed."""

from __future__ import annotations

import argparse
import sys

from simweb.server import SimWeb


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m simweb", description="Simulated university web (forward proxy)."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--day", type=int, default=1, help="simulated day (1 or 2)")
    parser.add_argument("--delay-scale", type=float, default=1.0, help="multiplier for artificial delays")
    args = parser.parse_args(argv)
    web = SimWeb(port=args.port, day=args.day, delay_scale=args.delay_scale).start()
    print(f"simweb proxy on {web.proxy_url}", flush=True)
    try:
        web.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        web.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
