"""Every shell example of the README and of docs/dialects.md runs as written, in order, in one
shell, against a server started as `make run` starts it. Only the address in the quick start's
`URL=` line is replaced (by the test server's); a block right after the comment
`<!-- not run by tests: ... -->` is skipped (it starts the server, or runs the test suites)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_serve import serving

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "dialects.md"]
DOCUMENTED_URL = "http://127.0.0.1:8080"
URL_LINE = re.compile(rf"^URL={re.escape(DOCUMENTED_URL)}(?=\s)", re.MULTILINE)
FENCE = re.compile(r"^```(?:sh|bash)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!-- not run by tests: [^>]+ -->\s*$")
MARK = "@@@ example {} @@@"
# What the output of the example holding the key must show.
EXPECTED = {
    "--follow": "hello world",
    "job_runs.xml": "<status>Complete</status>",
    "/result ": "204",
    "operations/$OPERATION/execute": '"description"',
    "api-token=$SAYMON_TOKEN": '"operation_id"',
    'echo "customer': "customer ",
    "/healthz": "ok",
}


def examples() -> list[str]:
    """The shell blocks to run, in reading order."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in FENCE.finditer(text):
            if not SKIP.search(text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1] + "\n"):
                found.append(match.group(1))
    return found


def test_the_readme_and_dialect_examples_run_as_written(tmp_path: Path, jobs_run_as: str) -> None:
    blocks = examples()
    assert sum(len(URL_LINE.findall(b)) for b in blocks) == 1, "one URL= line sets the address"
    strays = [b for b in blocks if DOCUMENTED_URL in URL_LINE.sub("", b)]
    assert not strays, f"examples that name the address instead of $URL: {strays}"

    data_dir = tmp_path / "data"
    env = {
        "JOBYARD_DATA_DIR": str(data_dir),
        "JOBYARD_RUN_AS": jobs_run_as,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    # The examples run in a checkout whose .venv holds jobyard: this one's, by a link.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(Path(sys.executable).parent.parent)
    migrated = subprocess.run(
        [str(checkout / ".venv/bin/jobyard"), "db", "upgrade"],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    with serving(env, tmp_path / "serve.log") as url:
        script = "\n".join(
            f"printf '\\n%s\\n' '{MARK.format(i)}'; printf '\\n%s\\n' '{MARK.format(i)}' >&2\n"
            + URL_LINE.sub(f"URL={url}", block)
            for i, block in enumerate(blocks)
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=checkout,
            env={**inherited, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    outputs = re.split(r"\n@@@ example \d+ @@@\n", done.stdout)[1:]
    failed = len(outputs) - 1
    assert done.returncode == 0, (
        f"example {failed} exited {done.returncode}:\n{blocks[failed]}\n"
        f"stdout:\n{outputs[-1] if outputs else ''}\nstderr:\n{done.stderr[-3000:]}"
    )
    assert len(outputs) == len(blocks)
    for block, output in zip(blocks, outputs, strict=True):
        assert output.strip(), f"printed nothing:\n{block}"
        for key, shown in EXPECTED.items():
            if key in block:
                assert shown in output, f"{block}\nprinted:\n{output}"
