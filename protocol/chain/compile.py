"""Compile the Solidity sources with py-solc-x, driving solc-js through ``tools/solc``.

py-solc-x's ``install_solc`` downloads native binaries, which cannot be had offline; the npm
``solc`` package (the same compiler, as wasm) can, and ``tools/solc`` gives it native solc's CLI.
Outputs are cached under ``build/`` keyed by a hash of every source, so a second call is instant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

from protocol.chain.errors import ChainError

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts" / "src"
SOLC_WRAPPER = REPO_ROOT / "tools" / "solc"
OPENZEPPELIN = REPO_ROOT / "node_modules" / "@openzeppelin" / "contracts"
CACHE_DIR = REPO_ROOT / "build"

# Must match foundry.toml so forge and py-solc-x produce the same bytecode.
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
    },
}


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: its source path, ABI and creation bytecode."""

    name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str


def _sources() -> dict[str, Path]:
    if not CONTRACTS_DIR.is_dir():
        raise ChainError(f"no contracts at {CONTRACTS_DIR}: run from a verigrad checkout")
    return {
        str(p.relative_to(REPO_ROOT)): p for p in sorted(CONTRACTS_DIR.rglob("*.sol"))
    }


def _imports(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("import ") and '"' in line:
            out.append(line.split('"')[1])
    return out


def _collect(entry: dict[str, Path]) -> dict[str, str]:
    """Read every source reachable from ``entry`` by imports (relative and @openzeppelin)."""
    contents: dict[str, str] = {}
    todo = list(entry.items())
    while todo:
        key, path = todo.pop()
        if key in contents:
            continue
        text = path.read_text()
        contents[key] = text
        for imp in _imports(text):
            if imp.startswith("@openzeppelin/contracts/"):
                ikey = "node_modules/" + imp
                ipath = REPO_ROOT / ikey
            else:
                ipath = (path.parent / imp).resolve()
                ikey = str(ipath.relative_to(REPO_ROOT))
            if not ipath.is_file():
                raise ChainError(f"{key} imports {imp}, which does not exist ({ipath}); run `make setup`")
            todo.append((ikey, ipath))
    return contents


def compile_contracts(force: bool = False) -> dict[str, Artifact]:
    """Compile everything under ``contracts/src`` and return artifacts by contract name."""
    contents = _collect(_sources())
    digest = hashlib.sha256(
        json.dumps([SETTINGS, sorted(contents.items())], sort_keys=True).encode()
    ).hexdigest()[:24]
    cache = CACHE_DIR / f"contracts-{digest}.json"
    if cache.is_file() and not force:
        raw = json.loads(cache.read_text())
    else:
        if not SOLC_WRAPPER.is_file():
            raise ChainError(f"compiler wrapper missing at {SOLC_WRAPPER}")
        try:
            out = solcx.compile_standard(
                {
                    "language": "Solidity",
                    "sources": {k: {"content": v} for k, v in contents.items()},
                    "settings": SETTINGS,
                },
                solc_binary=str(SOLC_WRAPPER),
                allow_paths=str(REPO_ROOT),
            )
        except solcx.exceptions.SolcError as exc:  # compile errors: show solc's own message
            raise ChainError(f"Solidity compilation failed:\n{exc}") from exc
        raw = {}
        for src, by_name in out.get("contracts", {}).items():
            for name, c in by_name.items():
                raw[name] = {
                    "source": src,
                    "abi": c["abi"],
                    "bytecode": c["evm"]["bytecode"]["object"],
                    "deployed_bytecode": c["evm"]["deployedBytecode"]["object"],
                }
        CACHE_DIR.mkdir(exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw))
        tmp.replace(cache)
    return {name: Artifact(name=name, **a) for name, a in raw.items()}


def artifact(name: str) -> Artifact:
    """The artifact of one contract, with a clear error if it does not exist."""
    arts = compile_contracts()
    if name not in arts:
        raise ChainError(f"no contract named {name!r}; known: {', '.join(sorted(arts))}")
    return arts[name]


def all_errors_abi() -> list[dict[str, Any]]:
    """Every custom error declared anywhere in the sources (for revert decoding)."""
    seen: dict[str, dict[str, Any]] = {}
    for art in compile_contracts().values():
        for item in art.abi:
            if item.get("type") == "error":
                sig = item["name"] + "(" + ",".join(i["type"] for i in item["inputs"]) + ")"
                seen[sig] = item
    return list(seen.values())
