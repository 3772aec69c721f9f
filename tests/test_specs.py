"""Agent specs: what a user writes in agents/<name>.yaml, and what we tell them when it is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_manager.errors import SpecError, UsageError
from agent_manager.spec.agents import parse_spec
from agent_manager.spec.loader import load_agents
from agent_manager.spec.workspace import Workspace

BASE = "model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: 8002\n"


def spec_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_spec("po", Path("agents/po.yaml"), text)
    return caught.value


def full_message(error: SpecError) -> str:
    return f"{error.message} {error.hint or ''}"


def test_the_default_agents_are_valid_and_use_their_documented_ports(workspace: Path):
    agents = load_agents(Workspace(workspace, "test"))
    assert {a.name: a.spec.port for a in agents} == {
        "architect": 8000,
        "developer": 8001,
        "po": 8002,
    }
    assert all(a.served_name == a.name for a in agents)
    assert all(a.spec.bind == "127.0.0.1" for a in agents)


def test_served_name_defaults_to_the_agent_name():
    agent = parse_spec("po", Path("agents/po.yaml"), BASE)
    assert agent.served_name == "po"
    named = parse_spec("po", Path("agents/po.yaml"), BASE + "served_name: product-owner\n")
    assert named.served_name == "product-owner"


def test_malformed_yaml_names_the_file_and_line():
    error = spec_error("model: Qwen/Qwen2.5-7B\nport: 8002\n  bad: [indent\n")
    assert error.message.startswith("agents/po.yaml:3: this is not valid YAML")
    assert error.exit_code == 2


def test_a_misspelled_field_suggests_the_right_one_with_its_line():
    error = spec_error(BASE + "temprature: 0.7\n")
    assert error.message == "agents/po.yaml:3: unknown field 'temprature'."
    assert error.hint == "Did you mean 'temperature'?"


def test_vllm_flag_names_used_as_fields_point_to_our_field():
    assert spec_error(BASE + "gpu_memory_utilization: 0.8\n").hint == (
        "Did you mean 'gpu_memory_fraction'?"
    )
    assert spec_error(BASE + "max_model_len: 4096\n").hint == "Did you mean 'max_context'?"


def test_wrong_type_names_the_field_and_the_value():
    error = spec_error(BASE + "max_num_seqs: lots\n")
    assert "agents/po.yaml:3: 'max_num_seqs'" in error.message
    assert "'lots'" in error.message


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_memory_fraction_must_be_in_zero_one(value: str):
    error = spec_error(BASE + f"gpu_memory_fraction: {value}\n")
    assert "'gpu_memory_fraction'" in error.message
    assert "outside (0, 1]" in error.message


def test_memory_fraction_of_one_is_allowed():
    agent = parse_spec("po", Path("agents/po.yaml"), BASE + "gpu_memory_fraction: 1\n")
    assert agent.spec.gpu_memory_fraction == 1


@pytest.mark.parametrize("port", ["0", "65536", "70000"])
def test_port_must_be_in_range(port: str):
    error = spec_error(f"model: Qwen/Qwen2.5-7B-Instruct-AWQ\nport: {port}\n")
    assert "agents/po.yaml:2: 'port'" in error.message
    assert "outside 1-65535" in error.message


def test_missing_required_field_is_named():
    error = spec_error("model: Qwen/Qwen2.5-7B-Instruct-AWQ\n")
    assert "required field 'port' is missing" in error.message


@pytest.mark.parametrize("quant", ["q4_K_M", "Q5_K_M", "q8_0"])
def test_gguf_quant_names_are_explained(quant: str):
    error = spec_error(BASE + f"quantization: {quant}\n")
    assert "llama.cpp quant; vLLM 0.33 cannot serve GGUF" in error.message
    assert "AWQ/GPTQ/FP8" in error.message


def test_gguf_model_references_are_explained():
    error = spec_error("model: unsloth/Qwen3-0.6B-GGUF:Q4_K_M\nport: 8002\n")
    assert "cannot serve GGUF" in error.message


def test_unknown_quantization_lists_what_vllm_accepts():
    error = spec_error(BASE + "quantization: awq4\n")
    assert "'awq4' is not a vLLM 0.33.0 method" in error.message
    assert "awq_marlin" in error.message


def test_swap_space_is_explained_as_removed_with_its_replacements():
    error = spec_error(BASE + "swap_space: 4\n")
    assert error.message.startswith("agents/po.yaml:3: 'swap_space'")
    assert "removed its swap-space flag in 0.18" in error.message
    assert "--kv-offloading-size" in error.message and "--cpu-offload-gb" in error.message


def test_swap_space_in_extra_args_is_explained_too():
    error = spec_error(BASE + "extra_args: ['--swap-space', '4']\n")
    assert "removed its swap-space flag in 0.18" in error.message


@pytest.mark.parametrize(
    ("key", "fix"),
    [
        ("VLLM_GPU_MEMORY_UTILIZATION", "set the field 'gpu_memory_fraction'"),
        ("VLLM_MAX_MODEL_LEN", "set the field 'max_context'"),
        ("VLLM_TEMPERATURE", "set the field 'temperature'"),
        ("VLLM_ENABLE_PREFIX_CACHING", "set the field 'prefix_caching'"),
        ("VLLM_MADE_UP_SETTING", "reads no VLLM_MADE_UP_SETTING"),
    ],
)
def test_vllm_environment_keys_vllm_does_not_read_are_refused(key: str, fix: str):
    error = spec_error(BASE + f"env:\n  {key}: '1'\n")
    assert "'env'" in error.message
    assert fix in error.message


@pytest.mark.parametrize(
    ("key", "value"),
    [("VLLM_LOGGING_LEVEL", "DEBUG"), ("VLLM_ENABLE_RESPONSES_API_STORE", "1")],
)
def test_real_vllm_environment_variables_are_accepted(key: str, value: str):
    agent = parse_spec("po", Path("agents/po.yaml"), BASE + f"env: {{{key}: '{value}'}}\n")
    assert agent.spec.env == {key: value}


def test_secrets_written_as_literals_are_refused():
    error = spec_error(BASE + "env: {HF_TOKEN: hf_abcdef}\n")
    assert "HF_TOKEN is a secret" in error.message
    assert "by reference" in error.message


def test_secrets_by_reference_are_accepted():
    agent = parse_spec("po", Path("agents/po.yaml"), BASE + "env: {HF_TOKEN: '${MY_TOKEN}'}\n")
    assert agent.spec.env["HF_TOKEN"] == "${MY_TOKEN}"


def test_api_key_env_must_be_a_variable_name_not_a_key():
    error = spec_error(BASE + "api_key_env: sk-123 secret\n")
    assert "NAME of an environment variable" in error.message


def test_extra_args_flags_must_exist_in_vllm_033():
    error = spec_error(BASE + "extra_args: ['--max-lora-rnak', '8']\n")
    assert "vLLM 0.33.0 has no flag --max-lora-rnak" in error.message
    assert "did you mean --max-lora-rank?" in error.message


def test_extra_args_values_must_be_within_the_flag_choices():
    error = spec_error(BASE + "extra_args: ['--kv-offloading-backend', 'disk']\n")
    assert "--kv-offloading-backend disk: invalid choice" in error.message


def test_extra_args_cannot_set_what_a_field_owns():
    error = spec_error(BASE + "extra_args: ['--max-model-len', '4096']\n")
    assert "--max-model-len is set by the field 'max_context'" in error.message


def test_extra_args_accept_valid_flags_in_both_spellings():
    text = BASE + "extra_args: ['--cpu-offload-gb', '2', '--enable_chunked_prefill', '--seed=7']\n"
    agent = parse_spec("po", Path("agents/po.yaml"), text)
    assert agent.spec.extra_args == [
        "--cpu-offload-gb",
        "2",
        "--enable_chunked_prefill",
        "--seed=7",
    ]


def test_a_removed_flag_value_without_a_flag_is_refused():
    error = spec_error(BASE + "extra_args: ['4096']\n")
    assert "'4096' is not a flag" in error.message


def test_bind_must_be_an_address():
    error = spec_error(BASE + "bind: localhost:80\n")
    assert "'bind'" in error.message and "not an IP address" in error.message


def test_two_agents_on_one_port_are_refused(workspace: Path):
    spec = workspace / "agents" / "architect.yaml"
    spec.write_text(spec.read_text().replace("port: 8000", "port: 8002"))
    with pytest.raises(SpecError) as caught:
        load_agents(Workspace(workspace, "test"))
    assert "8002 is also used by" in caught.value.message


def test_launching_one_agent_is_not_blocked_by_a_broken_spec_elsewhere(workspace: Path):
    (workspace / "agents" / "architect.yaml").write_text("model: [unclosed\n")
    agents = load_agents(Workspace(workspace, "test"), ["po"])
    assert [a.name for a in agents] == ["po"]


def test_unknown_agent_on_the_command_line_suggests_a_name(workspace: Path):
    with pytest.raises(UsageError) as caught:
        load_agents(Workspace(workspace, "test"), ["poo"])
    assert caught.value.hint == "Did you mean po?"


def test_a_spec_that_is_not_a_mapping_is_explained():
    error = spec_error("- just\n- a list\n")
    assert "expected 'field: value' lines" in error.message


def test_engine_is_auto_unless_the_spec_says_cuda_or_cpu():
    assert parse_spec("po", Path("agents/po.yaml"), BASE).spec.engine == "auto"
    cpu = parse_spec("po", Path("agents/po.yaml"), BASE + "engine: cpu\n")
    assert cpu.spec.engine == "cpu" and cpu.spec.cpu_kv_cache_gib == 4
    assert cpu.with_engine("cuda").spec.engine == "cuda"


def test_the_cpu_block_replaces_model_and_context_only_on_the_cpu():
    text = BASE + "cpu: {model: Qwen/Qwen2.5-1.5B-Instruct, max_context: 8192}\n"
    agent = parse_spec("po", Path("agents/po.yaml"), text)
    on_cpu = agent.with_engine("cpu").spec
    assert (on_cpu.model, on_cpu.max_context) == ("Qwen/Qwen2.5-1.5B-Instruct", 8192)
    assert agent.with_engine("cuda").spec.model == agent.spec.model
    # What the block says shows in the model it puts in place, not in a running agent's hash.
    assert (
        agent.with_engine("cuda").spec_hash()
        == parse_spec("po", Path("agents/po.yaml"), BASE).with_engine("cuda").spec_hash()
    )


def test_an_unknown_engine_names_the_field_and_the_choices():
    message = full_message(spec_error(BASE + "engine: rocm\n"))
    assert "agents/po.yaml:3" in message and "'engine'" in message
    assert "'auto'" in message and "'cuda'" in message and "'cpu'" in message
    assert "'rocm'" in message


def test_a_local_model_folder_must_be_an_absolute_path():
    local = parse_spec("po", Path("agents/po.yaml"), "model: /srv/models/my-tune\nport: 8002\n")
    assert local.spec.local_model
    for written in ("./models/my-tune", "~/models/my-tune", "/srv/../etc", "/srv/a b"):
        message = full_message(spec_error(f"model: '{written}'\nport: 8002\n"))
        assert "'model'" in message and "absolute path" in message


def test_the_cpu_kv_cache_is_a_field_not_an_environment_variable():
    message = full_message(spec_error(BASE + "env:\n  VLLM_CPU_KVCACHE_SPACE: '8'\n"))
    assert "cpu_kv_cache_gib" in message
    ok = parse_spec("po", Path("agents/po.yaml"), BASE + "env:\n  VLLM_CPU_OMP_THREADS_BIND: 0-3\n")
    assert ok.spec.env == {"VLLM_CPU_OMP_THREADS_BIND": "0-3"}


@pytest.mark.parametrize(
    "args",
    [
        ["-O3"],
        ["-O=2"],
        ["-O", "1"],
        ["--compilation-config.mode", "3"],
        ["-cc.mode=3"],
        ["--compilation-config.cudagraph_capture_sizes+", "1,2,4"],
        ["--kv-transfer-config.kv_connector", "OffloadingConnector", "--block-size", "32"],
    ],
)
def test_extra_args_accept_vllms_optimization_shorthand_and_dotted_keys(args: list[str]):
    text = BASE + "extra_args: " + json.dumps(args) + "\n"
    assert parse_spec("po", Path("agents/po.yaml"), text).spec.extra_args == args


def test_dotted_keys_must_belong_to_a_config_flag():
    message = full_message(spec_error(BASE + 'extra_args: ["--enforce-eager.mode", "3"]\n'))
    assert "--enforce-eager is not a vLLM 0.33.0 config flag with keys" in message


def test_a_spec_edited_between_two_loads_is_read_anew(workspace: Path):
    ws = Workspace(workspace, "test")
    (po,) = load_agents(ws, ["po"])
    spec = workspace / "agents" / "po.yaml"
    spec.write_text(spec.read_text().replace("max_num_seqs: 16", "max_num_seqs: 8"))
    (edited,) = load_agents(ws, ["po"])
    assert (po.spec.max_num_seqs, edited.spec.max_num_seqs) == (16, 8)
    # The same text again gives an equal agent (parsing is remembered by the file's text).
    assert load_agents(ws, ["po"]) == [edited]
