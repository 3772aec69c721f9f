"""The stand-in keeps vLLM 0.33's sleep-mode rules (vllm/v1/engine/core.py, the dev routers), so
a client that breaks them fails here: held requests, the level-2 wake order, the drain."""

from __future__ import annotations

import subprocess
import threading
import time

import requests

from tests.standin.process import run_standin, standin_command, standin_env
from tests.standin.sleep_mode import GARBAGE, NO_SLEEP_ON_CPU

MODEL = "Qwen/Qwen2.5-7B-Instruct-AWQ"
SLEEP_ARGS = [MODEL, "--served-model-name", "po", "--enable-sleep-mode"]
DEV_MODE = {"VLLM_SERVER_DEV_MODE": "1", "STANDIN_WAKE_SECONDS": "0.05"}


def _ask(url: str, answers: list[str], tokens: int = 4) -> None:
    body = {"model": "po", "prompt": "hello there", "max_tokens": tokens, "temperature": 0}
    reply = requests.post(f"{url}/v1/completions", json=body, timeout=30)
    answers.append(reply.json()["choices"][0]["text"])


def _in_background(url: str, answers: list[str], tokens: int = 4) -> threading.Thread:
    thread = threading.Thread(target=_ask, args=(url, answers, tokens), daemon=True)
    thread.start()
    return thread


def test_a_request_to_a_sleeping_engine_is_held_until_it_wakes_not_refused() -> None:
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        assert requests.post(f"{vllm.url}/sleep?level=1", timeout=10).ok
        answers: list[str] = []
        thread = _in_background(vllm.url, answers)
        time.sleep(0.5)
        assert thread.is_alive() and answers == []  # queued, not answered, not refused
        assert requests.post(f"{vllm.url}/wake_up", timeout=10).json()["status"] == "awake"
        thread.join(10)
        assert answers and GARBAGE not in answers[0]


def test_a_level_2_engine_woken_whole_before_reload_weights_answers_garbage() -> None:
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        requests.post(f"{vllm.url}/sleep?level=2", timeout=10).raise_for_status()
        answers: list[str] = []
        thread = _in_background(vllm.url, answers)
        time.sleep(0.3)
        requests.post(f"{vllm.url}/wake_up", timeout=10).raise_for_status()  # all tags: wrong
        thread.join(10)
        requests.post(
            f"{vllm.url}/collective_rpc", json={"method": "reload_weights"}, timeout=10
        ).raise_for_status()
        assert answers == [" ".join([GARBAGE] * 4)]
        assert requests.get(f"{vllm.url}/standin/counts", timeout=5).json()["garbage"] == 1


def test_the_documented_level_2_order_keeps_requests_held_until_the_kv_cache_is_back() -> None:
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        requests.post(f"{vllm.url}/sleep?level=2", timeout=10).raise_for_status()
        answers: list[str] = []
        thread = _in_background(vllm.url, answers)
        weights = requests.post(f"{vllm.url}/wake_up?tags=weights", timeout=10).json()
        assert weights == {"status": "sleeping", "tags": ["weights"]}
        assert requests.get(f"{vllm.url}/is_sleeping", timeout=5).json()["is_sleeping"] is True
        reload = requests.post(
            f"{vllm.url}/collective_rpc", json={"method": "reload_weights"}, timeout=10
        )
        assert reload.json() == {"results": [None]}
        assert answers == [] and thread.is_alive()
        kv = requests.post(f"{vllm.url}/wake_up?tags=kv_cache", timeout=10).json()
        assert kv == {"status": "awake", "tags": ["kv_cache"]}
        thread.join(10)
        assert answers and GARBAGE not in answers[0]


def test_reload_weights_with_the_weights_still_asleep_fails() -> None:
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        requests.post(f"{vllm.url}/sleep?level=2", timeout=10).raise_for_status()
        reload = requests.post(
            f"{vllm.url}/collective_rpc", json={"method": "reload_weights"}, timeout=10
        )
        assert reload.status_code == 500


def test_reset_prefix_cache_answers_success_and_can_say_false() -> None:
    with run_standin(SLEEP_ARGS, DEV_MODE) as vllm:
        reply = requests.post(f"{vllm.url}/reset_prefix_cache", timeout=5)
        assert reply.json() == {"success": True}
    with run_standin(SLEEP_ARGS, {**DEV_MODE, "STANDIN_RESET_PREFIX_FAIL": "1"}) as vllm:
        reply = requests.post(f"{vllm.url}/reset_prefix_cache", timeout=5)
        assert reply.status_code == 200 and reply.json() == {"success": False}


def test_sleep_in_mode_wait_lets_the_in_flight_request_finish_and_abort_cuts_it() -> None:
    slow = {**DEV_MODE, "STANDIN_TOKENS_PER_SECOND": "20"}
    with run_standin(SLEEP_ARGS, slow) as vllm:
        answers: list[str] = []
        thread = _in_background(vllm.url, answers, tokens=20)
        time.sleep(0.2)
        requests.post(f"{vllm.url}/sleep?level=1&mode=wait", timeout=30).raise_for_status()
        thread.join(10)
        assert len(answers[0].split()) == 20
        requests.post(f"{vllm.url}/wake_up", timeout=10).raise_for_status()

        cut: list[str] = []
        thread = _in_background(vllm.url, cut, tokens=20)
        time.sleep(0.2)
        requests.post(f"{vllm.url}/sleep?level=1", timeout=30).raise_for_status()  # abort
        thread.join(10)
        assert len(cut[0].split()) < 20
        assert requests.get(f"{vllm.url}/standin/counts", timeout=5).json()["aborted"] == 1


def test_sleep_mode_on_the_cpu_standin_exits_with_vllms_line() -> None:
    env = standin_env({**DEV_MODE, "VLLM_CPU_KVCACHE_SPACE": "4"})
    done = subprocess.run(
        standin_command(SLEEP_ARGS), env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert NO_SLEEP_ON_CPU in done.stdout + done.stderr
