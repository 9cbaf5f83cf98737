"""The `smoke` section (where `verify --smoke --from aks|databricks` runs): the repository's
file declares the Job's image and no Databricks workspace; bad values are refused at load time
with their location and field, like every other section."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsc_reconcile import DesiredStateError, load_desired_state
from nsc_reconcile.model.images import declared_images
from tests.paths import DESIRED_STATE

SMOKE = """smoke:
  image: {container_image: smoke-python}
  timeout_seconds: 180
"""
# The image given by registry, repository and tag (not a declared image): still accepted.
BY_TAG = SMOKE.replace(
    "{container_image: smoke-python}",
    '{registry: "nscacr${env}", repository: library/python, tag: "3.12-slim"}',
)


def test_the_repository_declares_the_smoke_image_and_no_workspace() -> None:
    state = load_desired_state(DESIRED_STATE)
    smoke = state.smoke
    assert smoke is not None
    assert smoke.image.container_image == "smoke-python"
    found = smoke.image.resolve(declared_images(state.container_images))
    assert found is not None
    assert (found.registry, found.repository, found.tag) == (
        "nscacrdev",
        "library/python",
        "3.12-slim",
    )
    assert found.digest is not None
    assert found.digest.startswith("sha256:")
    assert (smoke.namespace, smoke.timeout_seconds, smoke.databricks) == (None, 180, None)


@pytest.mark.parametrize(
    ("new", "field", "expect"),
    [
        (SMOKE.replace("180", "5"), "smoke.timeout_seconds", "greater than or equal to 30"),
        (SMOKE + "  databricks: {workspace_url: http://adb-1.2.azuredatabricks.net}\n",
         "smoke.databricks.workspace_url", "should match pattern"),
        (SMOKE + "  databricks: {workspace_url: https://adb-1.2.azuredatabricks.net, token: x}\n",
         "smoke.databricks.token", "unknown field 'token'"),
        (BY_TAG.replace("tag: \"3.12-slim\"", "tag: \":latest\""), "smoke.image.tag",
         "should match pattern"),
        (SMOKE + "  namespace: Not_A_Name\n", "smoke.namespace", "invalid name"),
    ],
    ids=["timeout", "plain-http-workspace", "unknown-field", "bad-tag", "bad-namespace"],
)  # fmt: skip
def test_bad_smoke_values_are_refused_with_their_location(
    new: str, field: str, expect: str, tmp_path: Path
) -> None:
    text = DESIRED_STATE.read_text(encoding="utf-8")
    assert text.count(SMOKE) == 1
    path = tmp_path / "desired_state.yaml"
    path.write_text(text.replace(SMOKE, new), encoding="utf-8")
    with pytest.raises(DesiredStateError) as error:
        load_desired_state(path)
    matching = [p for p in error.value.problems if p.field == field and expect in p.message]
    assert matching, str(error.value)
    assert matching[0].location is not None
    assert matching[0].location.file == path
