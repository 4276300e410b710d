"""How a local training run scales out: processes, FSDP/DeepSpeed, several machines.

The training step shows these lines under the estimate (local backend), so the way from one
process to several GPUs or machines is visible where the settings are chosen. Details and
measurements: docs/local-training.md, "More than one process, and scaling out".
"""

from __future__ import annotations

from ftwizard.session import Backend, Session

WORKER = "-m ftwizard.providers.local.worker RUN_DIR/config.json"
LAUNCH = "python -m accelerate.commands.launch"
TRL_CONFIGS = "$(python -c 'import trl,os;print(os.path.dirname(trl.__file__))')/accelerate_configs"


def scale_out_lines(session: Session, gpus: int | None = None) -> list[str]:
    """What the local run will use and, once it is more than one CPU process, the lines for
    FSDP/DeepSpeed (with GPUs) and for several machines."""
    if session.task.backend is not Backend.local:
        return []
    from ftwizard.providers.local.process import visible_gpu_count
    from ftwizard.training.plan import current_hyperparameters

    gpus = visible_gpu_count() if gpus is None else gpus
    chosen = current_hyperparameters(session).get("processes")
    processes = chosen or max(1, gpus)
    where = f"{gpus} GPU(s)" if gpus else "CPU (FSDP/DeepSpeed need GPUs)"
    lines = [f"Processes: {processes} on {where}; setting 'processes'."]
    if gpus:
        lines.append(
            f"Shard a large model: {LAUNCH} --config_file {TRL_CONFIGS}/fsdp2.yaml "
            f"(or zero3.yaml) --num_processes {gpus} {WORKER}"
        )
    if processes <= 1 and not gpus:
        return lines  # one CPU process: nothing to scale yet
    per = max(1, gpus)
    lines.append(
        f"Several machines, on each: {LAUNCH} --multi_gpu --num_machines 2 --machine_rank "
        f"$RANK --main_process_ip $HEAD_IP --main_process_port 29500 "
        f"--num_processes {2 * per} {WORKER}"
    )
    return lines


__all__ = ["scale_out_lines"]
