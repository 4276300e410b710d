"""The training step's scale-out lines: processes, FSDP/DeepSpeed with GPUs, several machines."""

from __future__ import annotations

from ftwizard.session import Backend
from ftwizard.store import SessionStore
from ftwizard.training import plan as training_plan
from ftwizard.training.scale_out import scale_out_lines
from tests.tiny_local import Tickets
from tests.training.sessions import session_at_training


def test_one_cpu_process_says_so_and_nothing_more(store: SessionStore, tickets: Tickets) -> None:
    session = session_at_training(store, tickets)
    assert scale_out_lines(session, gpus=0) == [
        "Processes: 1 on CPU (FSDP/DeepSpeed need GPUs); setting 'processes'."
    ]


def test_two_cpu_processes_show_the_multi_machine_line(
    store: SessionStore, tickets: Tickets
) -> None:
    session = session_at_training(store, tickets)
    assert training_plan.set_hyperparameter(session, "processes", "2")
    lines = scale_out_lines(session, gpus=0)
    assert lines[0].startswith("Processes: 2 on CPU")
    assert not any("fsdp2" in line for line in lines)
    assert lines[-1] == (
        "Several machines, on each: python -m accelerate.commands.launch --multi_gpu "
        "--num_machines 2 --machine_rank $RANK --main_process_ip $HEAD_IP "
        "--main_process_port 29500 --num_processes 2 -m ftwizard.providers.local.worker "
        "RUN_DIR/config.json"
    )


def test_gpus_offer_fsdp_and_deepspeed_configs(store: SessionStore, tickets: Tickets) -> None:
    session = session_at_training(store, tickets)
    lines = scale_out_lines(session, gpus=4)
    assert lines[0].startswith("Processes: 4 on 4 GPU(s)")
    assert "accelerate_configs/fsdp2.yaml (or zero3.yaml) --num_processes 4" in lines[1]
    assert "--num_processes 8" in lines[2]


def test_hosted_backends_have_no_such_lines(store: SessionStore, tickets: Tickets) -> None:
    assert scale_out_lines(session_at_training(store, tickets, backend=Backend.openai)) == []
