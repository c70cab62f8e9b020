"""Child process of ``--compare-0.2.1``: times the workloads under clumsygrad 0.2.1.

Run by path with the interpreter of a venv that has ``clumsygrad==0.2.1`` installed, so
``import clumsygrad`` is 0.2.1 and ``workloads``/``runner`` (this file's neighbours, on
``sys.path`` as the script directory) are imported as top-level modules.  The 0.2.1 step and
the NumPy yardstick take turns in this one process.  Prints one JSON object on stdout.

    python _child021.py '{"sizes": ["tiny"], "rounds": 5, "target": 0.05, "chains": [500, 10000]}'
"""
import json
import platform
import sys
import time
from importlib.metadata import version

import numpy as np

import runner
import workloads


def chain_result(n: int) -> dict:
    try:
        start = time.perf_counter()
        x, out = workloads.build_chain(n)
        built = time.perf_counter()
        out.backward()
        done = time.perf_counter()
    except RecursionError as exc:  # 0.2.1 builds its backward order recursively
        return {"error": f"RecursionError: {str(exc).split(' while ')[0]}"}
    return {"build": (built - start) / n, "backward": (done - built) / n}


def main(config: dict) -> dict:
    result = {
        "clumsygrad": version("clumsygrad"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "mlp": {},
        "chain": {},
    }
    for name in config["sizes"]:
        data = workloads.mlp_data(workloads.MLP_SIZES[name])
        contenders = [
            runner.Contender("clumsygrad", runner.loop_sample(workloads.ClumsyMLP(data).step)),
            runner.Contender("numpy", runner.loop_sample(workloads.NumpyMLP(data).step)),
        ]
        medians = runner.run_interleaved(contenders, config["rounds"], config["target"])
        result["mlp"][name] = {c: t["step"] for c, t in medians.items()}
        print(f"{result['clumsygrad']}: mlp-{name} done", file=sys.stderr, flush=True)
    failed_at = None
    for n in sorted(config["chains"]):
        if failed_at is not None:  # a deeper chain cannot do better; skip building it
            result["chain"][str(n)] = {"error": f"RecursionError (not run: the {failed_at:,} chain already fails)"}
            continue
        samples = [chain_result(n) for _ in range(config["chain_rounds"] if n <= 10_000 else 1)]
        if "error" in samples[0]:
            failed_at = n
            result["chain"][str(n)] = samples[0]
        else:
            result["chain"][str(n)] = {
                key: sorted(s[key] for s in samples)[len(samples) // 2] for key in ("build", "backward")
            }
    return result


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
