"""The documentation's links: the README links nothing outside the repository, and every
relative link of the README, CHANGELOG.md and docs/*.md names a file that exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) or [text](target "title"); images too.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _targets(path: Path) -> list[str]:
    # Code blocks show commands and configuration, not links.
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return LINK.findall(text)


def test_the_readme_links_only_inside_the_repository():
    targets = _targets(ROOT / "README.md")
    assert targets, "no links found: the pattern is broken"
    for target in targets:
        assert not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I), f"outside link: {target}"
        resolved = (ROOT / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"outside the repository: {target}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_name_files_that_exist(document):
    for target in _targets(document):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{document.name}: broken link {target}"
