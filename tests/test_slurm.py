"""The README's Slurm job-array recipe on a real Slurm: a single-node cluster started on this machine.

The module's fixture starts ``munged``, ``slurmctld`` and ``slurmd`` (own key, slurm.conf, free
ports, state and spool in a temporary directory) as foreground children and stops them (cancelling
any job left) at the end, also on failure. The tests submit tiny MNIST studies as the README says
(``sbatch --array=0-N ... --wrap "python -m rramk.ablation mnist ..."``, no ``--shard``) and check
that the three tasks of an array over four runs run shards 0/3, 1/3, 2/3 (2, 1, 1 runs) and their
runs equal one process's bit for bit (all but wall-clock seconds; ``rramk.report``'s table byte for
byte); and that a task cancelled mid-run (``scancel``: SIGTERM; ``scancel --signal=INT --full``:
Ctrl-C) resumes, bit for bit, when the array is submitted again, which skips the finished one.

Skipped without ``slurmctld``, ``slurmd``, ``sbatch`` or ``munged`` on PATH (Debian:
``apt-get install slurm-wlm munge``; .ci/run installs them), when not root (slurmd launches jobs as
their user) or without real MNIST. Daemons and jobs inherit this process's niceness.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.test_train import DATA_ROOT, REPO_ROOT, needs_mnist
from rramk.studies.summaries import directory_of
from rramk.training.run_settings import PUBLISHED

pytestmark = [pytest.mark.slow, needs_mnist]

COMMANDS = ("slurmctld", "slurmd", "sbatch", "munged", "squeue", "scancel", "scontrol", "sinfo")
START_TIMEOUT = 60  # s for the daemons to answer
JOB_TIMEOUT = 900  # s for an array to finish on a loaded 2-core machine


def _computed(history: list[dict]) -> list[dict]:
    """Every per-epoch field but wall-clock time."""
    return [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in history]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_environment() -> dict[str, str]:
    """This process's environment without another Slurm's variables (the tests may run inside a job)."""
    prefixes = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "SQUEUE_", "SINFO_", "SCANCEL_", "SCONTROL_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@dataclass
class Slurm:
    """A running single-node cluster: its directory, node and the environment its commands need."""

    base: Path
    node: str
    env: dict[str, str]
    logs: dict[str, Path]

    def run(self, *command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=120, **kwargs)
        if check and result.returncode:
            raise AssertionError(f"{shlex.join(command)} exited {result.returncode}: {result.stderr}{self.tails()}")
        return result

    def tails(self, lines: int = 30) -> str:
        text = ""
        for name, path in self.logs.items():
            if path.is_file():
                text += f"\n--- {name} ({path}), last lines:\n" + "\n".join(path.read_text(errors="replace")
                                                                          .splitlines()[-lines:])
        return text

    def submit(self, *sbatch_args: str, env: dict[str, str]) -> str:
        """``sbatch ARGS`` from the checkout, as a user does there; the job id."""
        result = subprocess.run(["sbatch", *sbatch_args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=120)
        found = re.search(r"Submitted batch job (\d+)", result.stdout)
        assert result.returncode == 0 and found, f"sbatch: {result.stdout}{result.stderr}{self.tails()}"
        return found.group(1)

    def queued(self, job: str) -> str:
        """squeue's lines of the job (an array: all its tasks), "" once none is pending or running."""
        result = self.run("squeue", "-h", "-j", job, "-o", "%i %T", check=False)
        return result.stdout.strip() if result.returncode == 0 else ""  # "Invalid job id": long gone

    def wait(self, job: str, timeout: float = JOB_TIMEOUT) -> dict[int, dict[str, str]]:
        """Wait until the job (every task of an array) has ended; {array task id: scontrol's fields}."""
        deadline = time.monotonic() + timeout
        while self.queued(job):
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job} still queued after {timeout} s:\n{self.queued(job)}{self.tails()}")
            time.sleep(0.5)
        return self.tasks(job)

    def tasks(self, job: str) -> dict[int, dict[str, str]]:
        records = {}
        for line in self.run("scontrol", "show", "job", "-o", job).stdout.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            records[int(fields.get("ArrayTaskId", "0"))] = fields
        return records


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _start(command: list[str], log: Path, env: dict[str, str], started: list) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log.open("ab"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    started.append((process, command[0]))
    return process


def _until(condition, what: str, processes: list, tails, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process, name in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode} while waiting for {what}{tails()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {timeout} s{tails()}")
        time.sleep(0.2)


SLURM_CONF = """\
ClusterName=rramktest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
KillWait=10
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="module")
def slurm():
    missing = [c for c in COMMANDS if shutil.which(c) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} not on PATH; Debian: apt-get install slurm-wlm "
                    "munge)")
    if os.geteuid() != 0:
        pytest.skip("the single-node Slurm of these tests runs its daemons as root (slurmd starts jobs as their user)")
    # munged wants its socket's directory and every parent searchable by all (pytest's tmp_path is not)
    base = Path(tempfile.mkdtemp(prefix="rramk-slurm-"))
    base.chmod(0o755)
    for sub in ("munge", "state", "spool"):
        (base / sub).mkdir(mode=0o755)
    key = base / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munge_socket = base / "munge" / "munge.socket"
    node = socket.gethostname().split(".")[0] or "localhost"
    conf = base / "slurm.conf"
    conf.write_text(SLURM_CONF.format(node=node, ctld_port=_free_port(), slurmd_port=_free_port(), base=base,
                                      munge_socket=munge_socket))
    env = {**_clean_environment(), "SLURM_CONF": str(conf)}
    logs = {"munged": base / "munge" / "munged.log", "slurmctld": base / "slurmctld.log",
            "slurmd": base / "slurmd.log", "daemon output": base / "daemons.out"}
    cluster = Slurm(base, node, env, logs)
    started: list[tuple[subprocess.Popen, str]] = []
    try:
        _start(["munged", "-F", f"--key-file={key}", f"--socket={munge_socket}",
                f"--pid-file={base / 'munge' / 'munged.pid'}", f"--log-file={logs['munged']}",
                f"--seed-file={base / 'munge' / 'munged.seed'}"], logs["daemon output"], env, started)
        _until(munge_socket.exists, "munge socket", started, cluster.tails)
        _start(["slurmctld", "-D", "-i"], logs["daemon output"], env, started)
        _start(["slurmd", "-D", "-N", node], logs["daemon output"], env, started)

        def node_idle() -> bool:
            result = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False)
            return result.returncode == 0 and result.stdout.strip() == "idle"

        _until(node_idle, "idle node in sinfo", started, cluster.tails)
        yield cluster
    finally:
        # cancel what is left (a failed test's jobs), so that no slurmstepd or training outlives the daemons
        if started and started[-1][0].poll() is None:
            jobs = cluster.run("squeue", "-h", "-o", "%A", check=False).stdout.split()
            if jobs:
                cluster.run("scancel", "--full", "--signal=KILL", *jobs, check=False)
                cluster.run("scancel", *jobs, check=False)
                deadline = time.monotonic() + 60
                while cluster.run("squeue", "-h", check=False).stdout.strip() and time.monotonic() < deadline:
                    time.sleep(0.5)
        for process, _ in reversed(started):
            _stop(process)
        shutil.rmtree(base, ignore_errors=True)


# ----------------------------------------------------------------------------- the studies

TINY = ["mnist", "--epochs", "1", "--limit-train", "300", "--hidden", "32", "--validation", "100",
        "--backend", "reference", "--device", "cpu", "--no-progress", "--configs", "ideal", "full model",
        "--seeds", "0", "1"]  # 4 runs: seed 0's ideal and full model, then seed 1's
TINY_BUDGET = "epochs1-n300-val100-hidden32"
# long enough per run (8 epochs of 3 batches) to cancel after its first epoch's checkpoint
LONGER = ["mnist", "--epochs", "8", "--limit-train", "3000", "--hidden", "32", "--validation", "100",
          "--backend", "reference", "--device", "cpu", "--no-progress", "--configs", "full model",
          "--seeds", "0", "1"]  # 2 runs: task 0 of an --array=0-1 trains seed 0, task 1 seed 1
LONGER_BUDGET = "epochs8-n3000-val100-hidden32"


def _study_arguments(study: list[str], out: Path, summaries: Path) -> list[str]:
    return [*study, "--out", str(out), "--summaries", str(summaries)]


def _job_environment(slurm: Slurm) -> dict[str, str]:
    """What sbatch runs in: the cluster's, the checkout's python first on PATH (an activated venv), the data
    set in RRAMK_DATA (README), and no OMP_NUM_THREADS: --export=ALL,OMP_NUM_THREADS=1 sets it."""
    env = dict(slurm.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{slurm.env.get('PATH', '')}",
               RRAMK_DATA=str(DATA_ROOT))
    env.pop("OMP_NUM_THREADS", None)
    return env


def _submit_array(slurm: Slurm, tasks: int, study: list[str], out: Path, summaries: Path, logs: Path) -> str:
    """The README's form: sbatch --array=0-N --cpus-per-task=T --export=ALL,OMP_NUM_THREADS=T --wrap
    "python -m rramk.ablation mnist ...", no --shard; task outputs go to ``logs``."""
    logs.mkdir(parents=True, exist_ok=True)
    wrap = "python -m rramk.ablation " + shlex.join(_study_arguments(study, out, summaries))
    return slurm.submit(f"--array=0-{tasks - 1}", "--cpus-per-task=1", "--export=ALL,OMP_NUM_THREADS=1",
                        f"--output={logs}/slurm-%A_%a.out", "--wrap", wrap, env=_job_environment(slurm))


def _task_output(logs: Path, job: str, task: int) -> str:
    return (logs / f"slurm-{job}_{task}.out").read_text()


def _assert_completed(slurm: Slurm, tasks: dict[int, dict[str, str]], logs: Path, job: str, count: int) -> None:
    assert sorted(tasks) == list(range(count)), tasks
    for task, fields in tasks.items():
        assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), \
            f"task {task}: {fields['JobState']} {fields['ExitCode']}\n{_task_output(logs, job, task)}{slurm.tails()}"


def _one_process(study: list[str], out: Path, summaries: Path) -> None:
    """The same study in one process (no Slurm), on one thread as the tasks."""
    env = dict(_clean_environment(), OMP_NUM_THREADS="1", RRAMK_DATA=str(DATA_ROOT))
    result = subprocess.run([sys.executable, "-m", "rramk.ablation", *_study_arguments(study, out, summaries)],
                            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr


def _runs(summaries: Path) -> dict[str, tuple[dict, list[dict]]]:
    """{run directory: (summary, metrics.jsonl records)} of every published run under ``summaries``."""
    return {str(p.parent.relative_to(summaries)): (json.loads(p.read_text()),
                                                   [json.loads(line) for line in
                                                    (p.parent / "metrics.jsonl").read_text().splitlines()])
            for p in sorted(summaries.glob("*/*/*/seed*/summary.json"))}


def _assert_same_runs(got: Path, expected: Path, count: int) -> None:
    got_runs, expected_runs = _runs(got), _runs(expected)
    assert len(expected_runs) == count and sorted(got_runs) == sorted(expected_runs)
    for name, (summary, metrics) in expected_runs.items():
        other, other_metrics = got_runs[name]
        assert _computed(other["history"]) == _computed(summary["history"]), name
        assert _computed(other_metrics) == _computed(metrics), name
        for key in ("selected_epoch", "selected_test_accuracy", "final_test_accuracy", "settings"):
            if key == "settings":  # where the run lives, and whether it was resumed, may differ
                assert {k: v for k, v in other[key].items() if k not in ("out", "resume")} == \
                       {k: v for k, v in summary[key].items() if k not in ("out", "resume")}, name
            else:
                assert other[key] == summary[key], (name, key)
        assert other["machine"]["threads"] == summary["machine"]["threads"] == 1, name


def _report(reports: Path) -> dict[str, bytes]:
    """``python -m rramk.report --reports REPORTS``; the markdown files it wrote."""
    result = subprocess.run([sys.executable, "-m", "rramk.report", "--reports", str(reports)],
                            env=dict(_clean_environment(), OMP_NUM_THREADS="1"), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return {p.name: p.read_bytes() for p in sorted(reports.glob("*.md"))}


def test_a_job_array_runs_the_study_one_process_runs(slurm, tmp_path):
    """sbatch --array=0-2 over 4 runs: shards 0/3 (2 runs), 1/3, 2/3 (1 each), the bits of one process's
    runs, and the same tables from python -m rramk.report."""
    array, single, logs = tmp_path / "array", tmp_path / "single", tmp_path / "logs"
    job = _submit_array(slurm, 3, TINY, array / "runs", array / "reports" / "ablation" / "summaries", logs)
    _one_process(TINY, single / "runs", single / "reports" / "ablation" / "summaries")  # while the array runs
    tasks = slurm.wait(job)
    _assert_completed(slurm, tasks, logs, job, 3)
    for task, share in enumerate([2, 1, 1]):
        output = _task_output(logs, job, task)
        assert f"shard {task}/3 ({share} of 4 runs)" in output, output
        assert output.count(": training -> ") == share, output
    _assert_same_runs(array / "reports" / "ablation" / "summaries", single / "reports" / "ablation" / "summaries",
                      count=4)
    # every run directory came from exactly one task: no task trained another's share
    assert len(list((array / "runs").glob("mnist/*/*/seed*/summary.json"))) == 4
    from_array, from_one = _report(array / "reports"), _report(single / "reports")
    assert f"ablation_mnist_{TINY_BUDGET}.md" in from_array and "README.md" in from_array
    assert from_array.keys() == from_one.keys()
    for name in from_one:  # machine, date and command lines included: same machine, same day, same runs
        assert from_array[name] == from_one[name], name
    assert (array / "reports" / f"ablation_mnist_{TINY_BUDGET}.png").is_file()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """LONGER's summaries from one process, never interrupted."""
    root = tmp_path_factory.mktemp("uninterrupted")
    _one_process(LONGER, root / "runs", root / "summaries")
    return root / "summaries"


@pytest.mark.parametrize("cancel", [["scancel"], ["scancel", "--signal=INT", "--full"]],
                         ids=["scancel-SIGTERM", "scancel-signal-INT-full"])
def test_a_cancelled_task_submitted_again_resumes_and_loses_nothing(slurm, tmp_path, uninterrupted, cancel):
    """Cancel task 0 of an --array=0-1 after its run's first epoch, let task 1 finish, submit the same
    array again: task 0 resumes from its checkpoint, task 1 is done already, and both runs equal
    uninterrupted ones bit for bit. Plain scancel sends SIGTERM, which the training loop handles like a
    Ctrl-C: it saves the step it is in and stops (the task shows CANCELLED); with --signal=INT --full
    it sees the Ctrl-C itself, saves and exits 130."""
    runs, summaries, logs = tmp_path / "runs", tmp_path / "summaries", tmp_path / "logs"
    run = runs / "mnist" / LONGER_BUDGET / directory_of("all", PUBLISHED["mnist"]["lr_pulses"]) / "seed0"
    job = _submit_array(slurm, 2, LONGER, runs, summaries, logs)
    deadline = time.monotonic() + JOB_TIMEOUT
    while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().count("\n") >= 1):
        assert time.monotonic() < deadline and slurm.queued(f"{job}_0"), \
            f"task 0 wrote no epoch\n{(logs / f'slurm-{job}_0.out').read_text() if logs.exists() else ''}"
        time.sleep(0.05)
    slurm.run(*cancel, f"{job}_0")
    tasks = slurm.wait(job)
    assert not (run / "summary.json").exists(), "the run finished before scancel reached it: give LONGER more epochs"
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert 1 <= checkpoint["epoch"] < 8
    output = _task_output(logs, job, 0)
    if cancel == ["scancel"]:
        # SIGTERM: the training loop saves the step it is in and stops, as on Ctrl-C (rramk.training.loop)
        assert tasks[0]["JobState"] == "CANCELLED", tasks[0]
        assert "interrupted; run the same command again to continue" in output, output
        assert checkpoint["batch"] >= 1  # saved after the step the SIGTERM arrived in
    else:
        # python saves the step it is in and exits 130; the batch shell got the SIGINT too: Debian's /bin/sh
        # (dash) dies of it at once ("0:2"; bash would wait for python: "130:0"), but the task ends only once
        # python has (slurmstepd waits for every process of the step), so the save completes
        assert tasks[0]["JobState"] == "FAILED" and tasks[0]["ExitCode"] in ("0:2", "130:0"), (tasks[0], output)
        assert "interrupted; run the same command again to continue" in output, output
        assert checkpoint["batch"] >= 1  # saved after the step the Ctrl-C arrived in, not at an epoch's end
    assert (tasks[1]["JobState"], tasks[1]["ExitCode"]) == ("COMPLETED", "0:0"), _task_output(logs, job, 1)

    again = _submit_array(slurm, 2, LONGER, runs, summaries, logs)
    _assert_completed(slurm, slurm.wait(again), logs, again, 2)
    resumed, skipped = _task_output(logs, again, 0), _task_output(logs, again, 1)
    rate = f"lr {PUBLISHED['mnist']['lr_pulses']:g}"  # rramk.train's default, named in the runner's lines
    assert f"full model, {rate}, seed 0: resuming -> {run}" in resumed, resumed
    assert f"full model, {rate}, seed 1: done already" in skipped and ": training -> " not in skipped, skipped
    assert not (run / "checkpoint.pt").exists()  # a finished run's checkpoint is deleted
    _assert_same_runs(summaries, uninterrupted, count=2)
