"""The emulator answers as real Azure did: every extract of a recorded real session is replayed
against it and each answer is compared with the recorded one (status, LRO headers, states,
error codes and envelopes, the body keys the product reads)."""

from __future__ import annotations

import re

import pytest

from nsc_reconcile.emulator.app import Emulator
from tests.conformance.replay import Recording, Replayer, load_recordings, recorded_codes
from tests.conftest import control

RECORDINGS = load_recordings()
# Recorded Retry-After: 30 s for private DNS operations, 3-20 s for the other providers; so a
# zone's operation outlasts the network writes recorded between its start and its first poll.
DURATIONS = {
    "Microsoft.Network/privateDnsZones": 1.5,
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks": 1.5,
}
CODES = recorded_codes(RECORDINGS)
SHA = re.compile(r"^[0-9a-f]{40}$")


def test_there_are_recordings() -> None:
    assert len(RECORDINGS) >= 10, [r.name for r in RECORDINGS]


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_recording_source_is_pinned(recording: Recording) -> None:
    assert recording.source["repo"] == "Azure/azure-service-operator"
    path = recording.source["path"]
    assert path.startswith("v2/internal/controllers/recordings/"), path
    assert path.endswith(f"/{recording.name}.yaml"), path
    assert SHA.match(recording.source["commit"]), recording.source
    assert recording.proves, "say what the recording proves"
    numbers = [e.n for e in recording.exchanges]
    assert numbers == sorted(set(numbers)), "exchanges in cassette order, each once"


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_emulator_answers_as_recorded(recording: Recording, emu: Emulator) -> None:
    control(emu, "POST", "config", {"lro_seconds": DURATIONS})
    replayer = Replayer(
        emu.info["arm"],
        emu.info["subscription_id"],
        emulated=set(emu.world.kinds),
        alternatives=CODES,
    )
    mismatches = replayer.replay(recording)
    assert not mismatches, "\n".join(str(m) for m in mismatches)
