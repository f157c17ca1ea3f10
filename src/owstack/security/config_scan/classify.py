"""Which checker reads a repository path: agent configs are recognised by name wherever they sit."""

from __future__ import annotations

import re

#: PHP tools' configs that name PHP code the tool runs (`config_scan/php.py`)
PHP_NAMES = frozenset(
    {
        "phpunit.xml",
        "phpunit.xml.dist",
        "phpunit.dist.xml",
        ".php-cs-fixer.php",
        ".php-cs-fixer.dist.php",
        ".php_cs",
        ".php_cs.dist",
        "rector.php",
        "ecs.php",
        "phpstan.neon",
        "phpstan.neon.dist",
        "phpstan.dist.neon",
        "psalm.xml",
        "psalm.xml.dist",
    }
)
MAX_FILE_BYTES = 5 * 1024 * 1024  # past this a file is parsed whole up to reading.MAX_PARSE_BYTES, then streamed
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "site-packages",
        ".cache",
    }
)
MCP_NAMES = frozenset(
    {
        ".mcp.json",
        "mcp.json",
        "mcp_config.json",
        "claude_desktop_config.json",
        "gemini-extension.json",  # Gemini CLI extensions (<workspace>/.gemini/extensions/* loaded at start)
        "qwen-extension.json",
    }
)
OPENCODE_NAMES = frozenset({"opencode.json", "opencode.jsonc", ".opencode.json"})
CRUSH_NAMES = frozenset({"crush.json", ".crush.json"})
#: `<folder>/settings.json` files that hold MCP servers: Gemini CLI, Qwen Code (a Gemini CLI fork), Zed
MCP_SETTINGS_DIRS = frozenset({".gemini", ".qwen"})
INSTRUCTION_NAMES = frozenset(
    {
        "agents.md",
        "agents.override.md",  # Codex CLI reads it in preference to AGENTS.md
        "agent.md",
        "claude.md",
        "claude.local.md",
        "gemini.md",
        ".cursorrules",
        ".windsurfrules",
        ".clinerules",
        "copilot-instructions.md",
        "skill.md",
        "conventions.md",
        ".github/copilot-instructions.md",
        "qwen.md",  # Qwen Code
        "crush.md",  # Crush
        "warp.md",  # Warp
        "amazonq.md",  # Amazon Q Developer CLI
        ".rules",  # Zed
        ".goosehints",  # Goose
        ".augment-guidelines",  # Augment
        ".roomodes",  # Roo Code custom modes (role definitions and instructions)
    }
)
INSTRUCTION_DIRS = (
    ".cursor/rules",
    ".claude/commands",
    ".claude/agents",
    ".clinerules",
    ".roo/rules",
    ".kiro/steering",
    ".kiro/specs",
    ".continue/rules",
    ".windsurf/rules",
    ".github/instructions",
    ".github/prompts",
    ".github/chatmodes",
    ".github/agents",
    ".junie",
    ".amazonq/rules",
    ".kilocode/rules",
    ".kilocode/workflows",
    ".windsurf/workflows",
    ".augment/rules",
    ".trae/rules",
    ".cursor/commands",
    ".claude/skills",
    ".claude/output-styles",
    ".opencode/command",
    ".opencode/commands",
    ".opencode/agent",
    ".opencode/agents",
    ".gemini/commands",
    ".qwen/commands",
    ".openhands/microagents",
    ".continue/prompts",
)
_CODE_SUFFIXES = (".py", ".js", ".cjs", ".mjs", ".ts", ".sh", ".ps1", ".rb", ".go", ".rs", ".java", ".lua")
#: per-mode rule folders and files (`.roo/rules-code/`, `.kilocode/rules-architect/`, `.roorules-code`)
_MODE_RULES = re.compile(
    r"(?:^|/)\.(?:roo|kilocode)/rules-[\w-]+/|(?:^|/)\.(?:roorules|clinerules|kilocoderules)-[\w-]+$"
)
#: githooks(5)
GIT_HOOK_NAMES = frozenset(
    {
        "applypatch-msg",
        "pre-applypatch",
        "post-applypatch",
        "pre-commit",
        "pre-merge-commit",
        "prepare-commit-msg",
        "commit-msg",
        "post-commit",
        "pre-rebase",
        "post-checkout",
        "post-merge",
        "pre-push",
        "pre-receive",
        "update",
        "proc-receive",
        "post-receive",
        "post-update",
        "reference-transaction",
        "push-to-checkout",
        "pre-auto-gc",
        "post-rewrite",
        "sendemail-validate",
        "fsmonitor-watchman",
        "p4-changelist",
        "p4-prepare-changelist",
        "p4-post-changelist",
        "p4-pre-submit",
        "post-index-change",
    }
)
PIN_NAMES = frozenset(
    {"pyproject.toml", "pipfile", "pipfile.lock", "setup.cfg", "setup.py", "uv.lock", "poetry.lock", "environment.yml"}
)
TEMPLATE_NAMES = frozenset({"tokenizer_config.json", "chat_template.json", "chat_template.jinja"})
#: JavaScript tool configs that editor extensions (ESLint, Prettier, Tailwind CSS, Jest, Vitest, Playwright) load
#: when a file is opened and build tools run (the name before `.config.`)
_JS_TOOLS = (
    "eslint|prettier|tailwind|postcss|jest|vitest|vite|vitest\\.workspace|playwright|babel|stylelint|svelte|astro|"
    "next|nuxt|webpack|rollup|commitlint|lint-staged|cypress|karma|tsup|remix|vue|quasar|metro|unocss|uno|panda|"
    "wxt|electron\\.vite|histoire|storybook|drizzle|knip|release-it|docusaurus"
)
JS_CONFIG = re.compile(
    rf"^(?:(?:{_JS_TOOLS})\.config|\.eslintrc|\.prettierrc|\.babelrc|\.stylelintrc|\.mocharc|\.lintstagedrc|"
    rf"\.releaserc|gatsby-(?:config|node))\.(?:js|mjs|cjs|ts|mts|cts)$"
)


#: files recognised by their name alone: name -> (kind, is_json)
_BY_NAME: dict[str, tuple[str, bool]] = {
    **{n: ("opencode", True) for n in OPENCODE_NAMES},
    **{n: ("crush", True) for n in CRUSH_NAMES},
    ".gitmodules": ("gitmodules", False),
    ".lfsconfig": ("lfsconfig", False),
    ".envrc": ("envrc", False),
    "package.json": ("package", True),
    "composer.json": ("package", True),
    "gradle-wrapper.properties": ("wrapper", False),
    "maven-wrapper.properties": ("wrapper", False),
    ".npmrc": ("npmrc", False),
    ".yarnrc.yml": ("yarnrc", False),
    ".yarnrc.yaml": ("yarnrc", False),
    ".yarnrc": ("yarnrc", False),
    ".pre-commit-config.yaml": ("pre-commit", False),
    ".pre-commit-config.yml": ("pre-commit", False),
    ".aider.conf.yml": ("aider", False),
    ".aider.conf.yaml": ("aider", False),
    ".continuerc.json": ("mcp", True),  # Continue's workspace config, merged into the user's
    ".nvim.lua": ("vim", False),  # Neovim's `exrc` files (read once trusted: `:trust`)
    ".nvimrc": ("vim", False),
    ".exrc": ("vim", False),  # Vim's and Neovim's `exrc`
    ".lazy.lua": ("vim", False),  # lazy.nvim's project spec (read once trusted)
    ".dir-locals.el": ("emacs", False),  # Emacs directory variables (`eval` asked for, then run)
    ".dir-locals-2.el": ("emacs", False),
    "conftest.py": ("conftest", False),  # imported by pytest, and by VS Code's test discovery on open
    ".pnpmfile.cjs": ("pnpmfile", False),  # run by every `pnpm install`
    ".pnpmfile.mjs": ("pnpmfile", False),
    "uv.toml": ("uv", False),  # uv's project config: the index `uv sync`/`uv run` install from
    ".pylintrc": ("python-tool-ini", False),  # pylint's `init-hook`: Python exec'd at every pylint start
    "pylintrc": ("python-tool-ini", False),
    "tox.ini": ("python-tool-ini", False),
    "pytest.ini": ("python-tool-ini", False),  # `addopts = -p plugin`: imported at every pytest start
    "build.gradle": ("build-script", False),  # run by the IDE's Gradle import on open
    "build.gradle.kts": ("build-script", False),
    "settings.gradle": ("build-script", False),
    "settings.gradle.kts": ("build-script", False),
    "build.rs": ("build-script", False),  # run by rust-analyzer on open
    "gemfile": ("build-script", False),  # evaluated by bundler (and Ruby LSP on open)
    ".gitpod.yml": ("gitpod", False),  # Gitpod's tasks run when a workspace opens
    "flake.nix": ("nix-shell", False),  # shellHook: run by `nix develop` and direnv's `use flake`
    "shell.nix": ("nix-shell", False),
    "devenv.nix": ("nix-shell", False),
    "devbox.json": ("nix-shell", True),  # shell.init_hook: run by `devbox shell`
    "bunfig.toml": ("bunfig", False),  # preload: loaded before every `bun run`/`bun test`
    "pixi.toml": ("pixi", False),  # [activation] scripts and env: before every `pixi run`/`pixi shell`
    "hatch_build.py": ("build-hook", False),  # imported by hatchling on `pip install .`
    "pdm_build.py": ("build-hook", False),  # imported by pdm-backend on `pip install .`
    "lefthook.yml": ("lefthook", False),  # git hooks lefthook installs (its npm package does on install)
    ".lefthook.yml": ("lefthook", False),
    "lefthook.yaml": ("lefthook", False),
    "cmakelists.txt": ("build-script", False),  # configured on open by CLion and CMake Tools
    "ipython_config.py": ("build-script", False),  # run by IPython/Jupyter started in the folder
    "jupyter_server_config.py": ("build-script", False),
    "jupyter_notebook_config.py": ("build-script", False),
    "jupyter_lab_config.py": ("build-script", False),
    "directory.build.props": ("msbuild", False),  # imported by every MSBuild project below it
    "directory.build.targets": ("msbuild", False),
    ".aider.model.settings.yml": ("aider-models", False),  # aider's per-model settings (`extra_params.api_base`)
    ".aider.model.settings.yaml": ("aider-models", False),
    "devcontainer-feature.json": ("devcontainer", True),  # a feature's own options: privileged, mounts, commands
}


def classify(rel: str) -> tuple[str, bool] | None:
    """(kind, is_json) of a repository path, or None if no checker applies."""
    p = rel.lower()
    name, parent = p.rsplit("/", 1)[-1], p.rsplit("/", 2)[-2] if "/" in p else ""
    if parent == ".claude" and name in ("settings.json", "settings.local.json"):
        return "claude", True
    if re.search(r"(?:^|/)\.(?:clinerules|cline)/hooks/[^/]+$", p) and not name.endswith((".md", ".txt")):
        return "cline-hook", False  # Cline runs `.clinerules/hooks/<HookName>` on its events (TaskStart, PreToolUse...)
    if parent == ".helix" and name in ("languages.toml", "config.toml"):
        return "helix", False
    if re.search(r"(?:^|/)\.openhands/(?:setup|pre-commit)\.sh$", p):
        return "openhands", False  # run at the start of every OpenHands session / as its pre-commit hook
    if parent == "hooks" and p.endswith(f".git/hooks/{name}"):
        return "git-hook", False
    if name in GIT_HOOK_NAMES and "hook" in parent:  # `.githooks/pre-commit`: what `core.hooksPath` points at
        return "git-hook", False
    if p.endswith(".vscode/extensions.json"):
        return "extensions", True
    if parent == ".cargo" and name in ("config.toml", "config"):
        return "cargo", False  # cargo's project config (rust-analyzer runs cargo check on open)
    if name in ("rust-toolchain.toml", "rust-toolchain"):
        return "cargo", False
    if name == "config":  # .git/config, or a bare repository committed in the tree if HEAD and objects/ sit beside it
        return ("gitconfig", False) if parent == ".git" else ("gitconfig?", False)
    if name == "settings.json" and parent in MCP_SETTINGS_DIRS:
        return "agent-settings", True
    if name in ("mise.toml", ".mise.toml", "mise.local.toml", ".mise.local.toml") or (
        name == "config.toml" and parent in ("mise", ".mise")
    ):
        return "mise", False
    if parent == ".idea" and name in ("startup.xml", "workspace.xml", "watchertasks.xml"):
        return "idea-startup", False
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name in PHP_NAMES:
        return "php-tool", False
    if name.endswith(".sublime-project"):
        return "sublime", True
    if name == "pom.xml":
        return "maven", False
    if parent == ".mvn" and name in ("jvm.config", "extensions.xml"):
        return "mvn", False
    if re.search(r"(?:^|/)\.opencode/plugins?/[^/]+\.(?:js|mjs|cjs|ts|mts)$", p):
        return "opencode-plugin", False
    if name in MCP_NAMES:
        return "mcp", True
    if name in ("cli.json", "cli-config.json") and parent == ".cursor":
        return "cursor-cli", True
    if name == "environment.json" and parent == ".cursor":
        return "cursor-environment", True
    if name.endswith(".json") and ("/.amazonq/cli-agents/" in "/" + p or "/.kiro/agents/" in "/" + p):
        return "q-agent", True
    if (name == "hooks.json" and parent in (".cursor", ".windsurf")) or name.endswith(".kiro.hook"):
        return "hooks", True
    if name == "settings.json" and parent == ".zed":
        return "zed", True
    if (
        (parent == ".continue" and name.startswith("config."))
        or "/.continue/mcpservers/" in "/" + p
        or re.search(r"(?:^|/)\.continue/(?:assistants|agents|models)/[^/]+$", p)
    ):
        if name.endswith((".yaml", ".yml")):
            return "mcp-yaml", False
        if name.endswith(".json"):
            return "mcp", True
    if p.endswith(".codex/config.toml"):
        return "codex", False
    if name == ".env" or name.startswith(".env."):
        return "dotenv", False
    if p.endswith(".vscode/tasks.json"):
        return "tasks", True
    if p.endswith(".vscode/settings.json"):
        return "settings", True
    if name.endswith(".code-workspace"):
        return "workspace", True
    if name in (".devcontainer.json", "devcontainer.json") and (name.startswith(".") or "/.devcontainer" in "/" + p):
        return "devcontainer", True
    if "/.husky/" in "/" + p and "/.husky/_/" not in "/" + p and "." not in name:
        return "git-hook", False  # husky's hooks: `prepare: husky` installs them, every commit runs them
    if JS_CONFIG.match(name):
        return "js-config", False
    if name.endswith((".gemspec", ".cmake")):
        return "build-script", False
    if name.endswith(".go"):
        return "cgo?", False  # read only when it holds a `#cgo` directive
    if name.endswith((".csproj", ".vbproj", ".fsproj", ".vcxproj", ".targets")):
        return "msbuild", False
    if _is_instructions(p, name):
        return "instructions", False
    return _model_or_pins(name)


def _is_instructions(p: str, name: str) -> bool:
    if name in INSTRUCTION_NAMES or name.endswith((".instructions.md", ".prompt.md", ".mdc")):
        return True
    in_folder = any(("/" + p).startswith("/" + d + "/") or f"/{d}/" in "/" + p for d in INSTRUCTION_DIRS)
    return (in_folder or bool(_MODE_RULES.search(p))) and not name.endswith(_CODE_SUFFIXES)  # skill scripts: code


def _model_or_pins(name: str) -> tuple[str, bool] | None:
    """Chat templates, Langflow pins and files that may be flows or manifests naming a Langflow image."""
    if name in TEMPLATE_NAMES:
        return "template", name.endswith(".json")
    if (
        (name.startswith("requirements") and name.endswith((".txt", ".in")))
        or name in PIN_NAMES
        or name.startswith(("dockerfile", "containerfile"))
        or name.endswith((".dockerfile", ".containerfile"))
        or (name.startswith(("docker-compose", "compose")) and name.endswith((".yml", ".yaml")))
    ):
        return "pins", False
    if name.endswith((".yml", ".yaml")):
        return "pins?", False  # Kubernetes or CI files that may name a Langflow image
    if name.endswith(".json"):
        return "flow?", True
    return None
