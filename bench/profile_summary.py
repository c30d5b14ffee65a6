"""Summarise py-spy's collapsed stacks (``run.py --profile DIR``): where the daemon spends its samples.

    python bench/profile_summary.py DIR/rl-log-run1.txt [--top 25]

Prints, for each file, the frames with the most samples of their own (self)
and the ratelimitd / wire-codec frames with the most samples under them
(inclusive), as percentages of all samples.
"""

from __future__ import annotations

import argparse
import collections

__all__ = ["summarise", "main"]


def summarise(path: str, top: int) -> str:
    """Return the self and inclusive top-``top`` tables of the collapsed-stack file at ``path``."""
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                under[frame] += n
    if not total:
        return f"== {path}: no samples"
    lines = [f"== {path}: {total} samples", "-- self"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("-- inclusive, ratelimitd and its wire codec")
    ours = [(frame, n) for frame, n in under.most_common() if "ratelimitd" in frame and "click" not in frame]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in ours[:top]]
    return "\n".join(lines)


def main() -> None:
    """Print the summary of every file named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(summarise(path, args.top))


if __name__ == "__main__":
    main()
