"""Third red-team pass on `scan --models` (2026-12-04): Hugging Face configs (`auto_map` into another
repository, sizes that allocate terabytes), TensorFlow graph ops that reach the host beyond ReadFile/WriteFile,
skops files, and the `torch.load(weights_only=True)` bypass routes (CVE-2025-32434). Each attack is written
from the format's schema or the advisory (files built by hand: tensorflow and skops are not installed), each
beside a benign twin that must stay below high."""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest
from _model_files import below_high, pb, tar_of, verdicts

from owstack.security.model_scan import scan_models

# -- Hugging Face auto_map into another repository -----------------------------------------------------------
# transformers dynamic_module_utils.get_class_from_dynamic_module: `"repo--module.Class"` downloads module.py
# of `repo` (not the model's own) and imports it when trust_remote_code=True.

AUTO_MAPS = {
    "config.json": {"model_type": "x", "auto_map": {"AutoModel": "evil-org/repo--modeling.Model"}},
    "tokenizer_config.json": {"auto_map": {"AutoTokenizer": [None, "evil-org/tok--tokenization.Fast"]}},
    "preprocessor_config.json": {"auto_map": {"AutoImageProcessor": "evil-org/img--processing.P"}},
    "processor_config.json": {"auto_map": {"AutoProcessor": "evil-org/p--processing_x.Proc"}},
}


@pytest.mark.parametrize("name", sorted(AUTO_MAPS))
def test_auto_map_into_another_repository(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(json.dumps(AUTO_MAPS[name]))
    assert verdicts(tmp_path)[name] == "high"  # was not looked at


def test_auto_map_in_a_nested_sub_config(tmp_path: Path) -> None:
    config = {"model_type": "llava", "text_config": {"auto_map": {"AutoModelForCausalLM": "a/b--m.C"}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert verdicts(tmp_path)["config.json"] == "high"


def test_auto_map_of_the_repository_own_code_is_not_this_finding(tmp_path: Path) -> None:
    config = {
        "model_type": "phi3",
        "auto_map": {"AutoConfig": "configuration_phi3.Phi3Config", "AutoModelForCausalLM": "modeling_phi3.Phi3"},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    tokenizer = {"auto_map": {"AutoTokenizer": ["tokenization_x.T", None]}, "chat_template": "{{ messages }}"}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(tokenizer))
    assert below_high(tmp_path)


# -- configs whose sizes make the loader allocate terabytes ---------------------------------------------------

LLAMA_3_8B = {
    "model_type": "llama",
    "vocab_size": 128256,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "max_position_embeddings": 131072,
}
DEEPSEEK_V3 = {
    "model_type": "deepseek_v3",
    "vocab_size": 129280,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "n_routed_experts": 256,
    "num_hidden_layers": 61,
    "max_position_embeddings": 163840,
}


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [
        ({"vocab_size": 10**12, "hidden_size": 4096}, "high"),
        ({"hidden_size": 10**6, "num_hidden_layers": 100}, "high"),
        ({"text_config": {"hidden_size": 65536, "intermediate_size": 10**7, "num_hidden_layers": 32}}, "high"),
        ({"hidden_size": 32768, "intermediate_size": 131072, "num_hidden_layers": 200}, "medium"),
    ],
)
def test_config_describing_an_absurd_model(tmp_path: Path, sizes: dict[str, object], expected: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", **sizes}))
    assert verdicts(tmp_path)["config.json"] == expected  # was not looked at


@pytest.mark.parametrize("config", [LLAMA_3_8B, DEEPSEEK_V3], ids=["llama3_8b", "deepseek_v3"])
def test_real_model_sizes_give_nothing(tmp_path: Path, config: dict[str, object]) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert "config.json" not in verdicts(tmp_path)


# -- TensorFlow graph ops that reach the host (graph.proto, node_def.proto, attr_value.proto) -----------------


def tf_node(name: str, op: str, inputs: tuple[str, ...] = (), **attrs: bytes) -> bytes:
    """A NodeDef: name (1), op (2), inputs (3), attr map entries (5: key 1, AttrValue 2)."""
    body = pb(1, name.encode()) + pb(2, op.encode()) + b"".join(pb(3, i.encode()) for i in inputs)
    return body + b"".join(pb(5, pb(1, k.encode()) + pb(2, v)) for k, v in attrs.items())


def attr_s(text: str) -> bytes:
    return pb(2, text.encode())  # AttrValue.s


def string_const(name: str, value: str) -> bytes:
    tensor = pb(1, 7) + pb(8, value.encode())  # TensorProto: dtype DT_STRING, string_val
    return tf_node(name, "Const", value=pb(8, tensor))  # AttrValue.tensor


def graph(*nodes: bytes, functions: tuple[bytes, ...] = ()) -> bytes:
    function = pb(1, pb(1, b"f")) + b"".join(pb(3, n) for n in functions)  # FunctionDef: signature, node_def
    library = pb(2, pb(1, function)) if functions else b""  # GraphDef.library: FunctionDefLibrary.function
    return b"".join(pb(1, n) for n in nodes) + library


def saved_model(graph_def: bytes) -> bytes:
    return pb(1, 1) + pb(2, pb(2, graph_def))  # SavedModel: schema version, meta_graphs[0].graph_def


SAVER = (
    tf_node("saver_filename", "Placeholder"),
    string_const("save/Const", "model"),
    tf_node("save/SaveV2", "SaveV2", ("save/Const", "save/SaveV2/tensor_names")),
    tf_node("save/RestoreV2", "RestoreV2", ("saver_filename", "save/RestoreV2/tensor_names")),
    tf_node("save/MergeV2Checkpoints", "MergeV2Checkpoints", ("save/ShardedFilename",)),
    tf_node("regex", "StaticRegexFullMatch", ("saver_filename",), pattern=attr_s("^s3://.*")),
    string_const("part", "_temp/part"),
    tf_node("join", "StringJoin", ("saver_filename", "part")),
    tf_node("save/ShardedFilename", "ShardedFilename", ("join", "shard", "num_shards")),
    tf_node("save/SaveV2_1", "SaveV2", ("save/ShardedFilename", "save/SaveV2/tensor_names")),
    tf_node("print", "PrintV2", ("x",), output_stream=attr_s("stderr")),
    tf_node("ReadFile", "Identity", ("x",)),  # a node *named* ReadFile
)

TF_ATTACKS = {
    "py_func": ("critical", graph(*SAVER, tf_node("cb", "PyFunc", ("x",), token=attr_s("pyfunc_0")))),
    "eager_py_func_in_a_function": (
        "critical",
        graph(*SAVER, functions=(tf_node("cb", "EagerPyFunc", ("x",), token=attr_s("pyfunc_1")),)),
    ),
    "print_to_a_file": (
        "high",
        graph(*SAVER, tf_node("p", "PrintV2", ("x",), output_stream=attr_s("file:///home/user/.bashrc"))),
    ),
    "immutable_const": (
        "high",
        graph(*SAVER, tf_node("c", "ImmutableConst", memory_region_name=attr_s("/etc/shadow"))),
    ),
    "matching_files": (
        "high",
        graph(*SAVER, string_const("pat", "/home/*/.ssh/*"), tf_node("m", "MatchingFiles", ("pat",))),
    ),
    "save_to_an_attacker_path": (
        "high",
        graph(*SAVER, string_const("dst", "/etc/cron.d/x"), tf_node("s", "SaveV2", ("dst", "names", "slices", "t"))),
    ),
    "restore_from_a_url": (
        "high",
        graph(*SAVER, string_const("src", "gs://evil/ckpt"), tf_node("r", "RestoreV2", ("src:0", "names", "slices"))),
    ),
    "save_to_a_joined_path": (
        "high",
        graph(
            *SAVER,
            string_const("a", "/etc/"),
            string_const("b", "cron.d/x"),
            tf_node("j", "StringJoin", ("a", "b")),
            tf_node("s", "SaveV2", ("j", "names", "slices", "t")),
        ),
    ),
    "sql_dataset_on_a_host_database": (
        "high",
        graph(
            *SAVER,
            string_const("db", "/var/lib/app/users.sqlite"),
            tf_node("q", "SqlDataset", ("driver", "db", "query")),
        ),
    ),
    "remap_matrix_from_a_host_checkpoint": (
        "high",
        graph(*SAVER, string_const("ck", "../../other/model.ckpt"), tf_node("r", "LoadAndRemapMatrix", ("ck", "name"))),
    ),
    "debug_identity_to_a_url": (
        "high",
        graph(*SAVER, tf_node("d", "DebugIdentity", ("x",), debug_urls=pb(1, pb(2, b"file:///tmp/dump")))),
    ),
    "dataset_to_tfrecord": ("high", graph(*SAVER, tf_node("w", "DatasetToTFRecord", ("ds", "fn", "ct")))),
}


@pytest.mark.parametrize("container", ["saved_model.pb", "frozen_graph.pb"])
@pytest.mark.parametrize("name", sorted(TF_ATTACKS))
def test_tensorflow_ops_that_reach_the_host(tmp_path: Path, name: str, container: str) -> None:
    expected, graph_def = TF_ATTACKS[name]
    data = saved_model(graph_def) if container == "saved_model.pb" else graph_def
    (tmp_path / container).write_bytes(data)
    assert verdicts(tmp_path)[container] == expected  # was clean


@pytest.mark.parametrize(
    ("filename", "expected"), [("/etc/passwd", "high"), ("../../.ssh/id_rsa", "high"), ("vocab.txt", None)]
)
def test_saved_model_asset_outside_the_assets_folder(tmp_path: Path, filename: str, expected: str | None) -> None:
    """tf.saved_model.load reads an asset from os.path.join(export_dir, "assets", filename) and hands the path
    to the graph (a vocabulary table's InitializeTableFromTextFileV2): an absolute name replaces the folder."""
    table = tf_node("init", "InitializeTableFromTextFileV2", ("table", "asset_path"))
    asset = pb(1, pb(1, b"asset_path:0")) + pb(2, filename.encode())  # AssetFileDef: tensor_info.name, filename
    meta_graph = pb(2, graph(*SAVER, tf_node("asset_path", "Placeholder"), table)) + pb(6, asset)
    (tmp_path / "saved_model.pb").write_bytes(pb(1, 1) + pb(2, meta_graph))
    assert verdicts(tmp_path).get("saved_model.pb") == expected  # was clean


@pytest.mark.parametrize("container", ["saved_model.pb", "frozen_graph.pb"])
def test_tensorflow_saver_graph_stays_quiet(tmp_path: Path, container: str) -> None:
    """Every SavedModel's saver runs SaveV2/RestoreV2/MergeV2Checkpoints on the path the loader feeds."""
    graph_def = graph(*SAVER)
    (tmp_path / container).write_bytes(saved_model(graph_def) if container == "saved_model.pb" else graph_def)
    assert below_high(tmp_path)


# -- skops (skops.io: schema.json nodes, trusted types) --------------------------------------------------------


def skops_file(tree: dict[str, object]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("schema.json", json.dumps(tree))
        zf.writestr("140.npy", b"\x93NUMPY\x01\x00v\x00" + b" " * 118)
    return out.getvalue()


def estimator(**children: object) -> dict[str, object]:
    content = {
        "C": {
            "__class__": "float",
            "__module__": "builtins",
            "__loader__": "JsonNode",
            "content": "1.0",
            "is_json": True,
        },
        "coef_": {
            "__class__": "ndarray",
            "__module__": "numpy",
            "__loader__": "NdArrayNode",
            "type": "numpy",
            "file": "140.npy",
        },
        **children,
    }
    return {
        "__class__": "LogisticRegression",
        "__module__": "sklearn.linear_model._logistic",
        "__loader__": "ObjectNode",
        "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": content},
        "protocol": 2,
        "_skops_version": "0.11.0",
    }


SKOPS_ATTACKS = {
    "object_node_popen": (
        "critical",
        {"p": {"__class__": "Popen", "__module__": "subprocess", "__loader__": "ObjectNode", "content": {}}},
    ),
    "function_node_system": (
        "critical",
        {"f": {"__class__": "function", "__module__": "os", "__loader__": "FunctionNode",
               "content": {"module_path": "os", "function": "system"}}},
    ),
    "type_node_eval": (
        "critical",
        {"t": {"__class__": "type", "__module__": "builtins", "__loader__": "TypeNode",
               "content": {"__class__": "eval", "__module__": "builtins"}}},
    ),
    "untrusted_class": (
        "high",
        {"o": {"__class__": "Helper", "__module__": "mypackage.models", "__loader__": "ObjectNode", "content": {}}},
    ),
    "method_node": (
        "high",
        {"m": {"__class__": "method", "__module__": "sklearn.linear_model._logistic", "__loader__": "MethodNode",
               "content": {"func": "__reduce__", "obj": {"__class__": "LogisticRegression",
               "__module__": "sklearn.linear_model._logistic", "__loader__": "ObjectNode", "content": {}}}}},
    ),
    "operator_func_node": (
        "critical",
        {"g": {"__class__": "attrgetter", "__module__": "_operator", "__loader__": "OperatorFuncNode",
               "attrs": ["__globals__"], "content": {}}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SKOPS_ATTACKS))
def test_skops_untrusted_types(tmp_path: Path, name: str) -> None:
    expected, children = SKOPS_ATTACKS[name]
    (tmp_path / "model.skops").write_bytes(skops_file(estimator(**children)))
    assert verdicts(tmp_path)["model.skops"] == expected  # was high for everything: "archive without any pickle"


def test_skops_estimator_of_trusted_types_is_clean(tmp_path: Path) -> None:
    func = {"__class__": "function", "__module__": "numpy", "__loader__": "FunctionNode",
            "content": {"module_path": "numpy", "function": "log1p"}}  # fmt: skip
    (tmp_path / "model.skops").write_bytes(skops_file(estimator(func=func)))
    (tmp_path / "renamed.zip").write_bytes(skops_file(estimator()))
    assert verdicts(tmp_path) == {}  # both were high (false positive)


# -- torch.load(weights_only=True) bypass routes (CVE-2025-32434), PyTorch Lightning hyper_parameters -----------


def legacy_tar(payload: bytes) -> bytes:
    """torch's legacy tar format: `sys_info`, `pickle`, `storages`, `tensors` (torch/serialization.py)."""
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    members = {"sys_info": pickle.dumps(sys_info), "pickle": payload, "storages": pickle.dumps(0)}
    return tar_of({**members, "tensors": pickle.dumps(0)}, tarfile.USTAR_FORMAT)


def test_legacy_tar_checkpoint_with_a_malicious_pickle_member(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(legacy_tar(b"cos\ngetcwd\n)R."))
    assert verdicts(tmp_path)["model.pt"] == "critical"  # already critical


def test_zip_checkpoint_with_globals_outside_the_weights_only_allowlist(tmp_path: Path) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            data = source.read(info)
            zf.writestr(
                info,
                b"\x80\x02cbuiltins\neval\nX\x04\x00\x00\x001+1\x85R." if info.filename.endswith("data.pkl") else data,
            )
    (tmp_path / "model.pt").write_bytes(out.getvalue())
    assert verdicts(tmp_path)["model.pt"] == "critical"  # already critical


def test_lightning_checkpoint_with_a_partial_in_hyper_parameters(tmp_path: Path) -> None:
    import torch

    checkpoint = {"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"act": functools.partial(os.getcwd)}}
    torch.save(checkpoint, tmp_path / "last.ckpt")
    assert verdicts(tmp_path)["last.ckpt"] == "critical"  # already critical


def test_custom_pipeline_from_another_repository(tmp_path: Path) -> None:
    """transformers `pipeline()` imports a config's `custom_pipelines` task `impl` like an auto_map entry."""
    config = {"model_type": "bert", "custom_pipelines": {"pair-classification": {"impl": "evil/p--pipe.Pair"}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert verdicts(tmp_path)["config.json"] == "high"


def test_auto_map_into_another_repository_in_a_zipped_model_folder(tmp_path: Path) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    with zipfile.ZipFile(tmp_path / "model.zip", "w") as zf:
        zf.writestr("model/config.json", json.dumps(AUTO_MAPS["config.json"]))
        zf.writestr("model/pytorch_model.bin", buffer.getvalue())
    assert verdicts(tmp_path)["model.zip"] == "high"  # was low (the checkpoint's pickle only)


ST_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("evil-org/st--custom.Module", "high"), ("subprocess.Popen", "critical"), ("custom_st.Transformer", "medium")],
)
def test_sentence_transformers_module_types(tmp_path: Path, kind: str, expected: str) -> None:
    """sentence-transformers imports each modules.json `type` by its dotted path and calls its `load`."""
    modules = [*ST_MODULES, {"idx": 3, "name": "3", "path": "3_X", "type": kind}]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    assert verdicts(tmp_path)["modules.json"] == expected  # was not looked at


def test_sentence_transformers_own_modules_give_nothing(tmp_path: Path) -> None:
    (tmp_path / "modules.json").write_text(json.dumps(ST_MODULES))
    assert "modules.json" not in verdicts(tmp_path)


NEMO_HPARAMS = {
    "cfg": {
        "encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "d_model": 256},
        "preprocessor": {"_target_": "builtins.exec", "source": "import os"},
        "decoder": {"_target_": "os.system", "command": "true"},
    }
}


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_lightning_checkpoint_whose_hyper_parameters_instantiate_a_command(tmp_path: Path, zipped: bool) -> None:
    """NeMo's models build their parts from the checkpoint's `hyper_parameters` cfg with Hydra when
    `load_from_checkpoint` runs (CVE-2025-23304's route through a .ckpt); plain dicts of strings pass
    torch.load(weights_only=True), so the pickle itself imports nothing off the allowlist."""
    import torch

    checkpoint = {"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": NEMO_HPARAMS}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer, _use_new_zipfile_serialization=zipped)
    loaded = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    assert loaded["hyper_parameters"] == NEMO_HPARAMS
    (tmp_path / "model.ckpt").write_bytes(buffer.getvalue())
    messages = [f.message for f in scan_models(tmp_path) if f.rule == "OWS-MDL-032"]
    assert any("builtins.exec" in m for m in messages) and any("os.system" in m for m in messages)
    assert verdicts(tmp_path)["model.ckpt"] == "critical"  # was low


def test_lightning_checkpoint_with_library_targets_stays_low(tmp_path: Path) -> None:
    import torch

    hparams = {"cfg": {"encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder"}, "target": "text"}}
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": hparams}, tmp_path / "model.ckpt")
    assert below_high(tmp_path)


@pytest.mark.parametrize(
    ("library", "cls", "expected"),
    [("subprocess", "Popen", "critical"), ("evil_plugin.models", "Loader", "medium")],
)
def test_peft_adapter_base_class_outside_the_model_libraries(
    tmp_path: Path, library: str, cls: str, expected: str
) -> None:
    """peft AutoPeftModel.from_pretrained: importlib.import_module(parent_library), then
    getattr(module, base_model_class).from_pretrained(base_model_path)."""
    config = {"peft_type": "LORA", "base_model_name_or_path": "x/y", "task_type": None}
    config["auto_mapping"] = {"base_model_class": cls, "parent_library": library}
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    assert verdicts(tmp_path)["adapter_config.json"] == expected  # was not looked at


def test_peft_adapter_of_a_transformers_model_gives_nothing(tmp_path: Path) -> None:
    config = {"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"]}
    config["auto_mapping"] = {
        "base_model_class": "LlamaForCausalLM",
        "parent_library": "transformers.models.llama.modeling_llama",
    }
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    assert "adapter_config.json" not in verdicts(tmp_path)


SD_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.30.0",
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "unet": ["diffusers", "UNet2DConditionModel"],
}


def test_diffusers_component_from_a_dangerous_library(tmp_path: Path) -> None:
    """diffusers get_class_obj_and_candidates: importlib.import_module(library), getattr(library, class)."""
    (tmp_path / "model_index.json").write_text(json.dumps({**SD_INDEX, "vae": ["subprocess", "Popen"]}))
    assert verdicts(tmp_path)["model_index.json"] == "critical"  # was not looked at


def test_diffusers_pipeline_index_gives_nothing(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps(SD_INDEX))
    assert "model_index.json" not in verdicts(tmp_path)
