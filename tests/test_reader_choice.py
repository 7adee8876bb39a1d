import pytest

from sbcard.errors import ReaderNotFoundError
from sbcard.transport.pcsc import ReaderInfo, choose_reader

READERS = [
    ReaderInfo(0, "ACS ACR39U ICC Reader 00 00", False, b""),
    ReaderInfo(1, "ACS ACR39U ICC Reader 01 00", True, b"\x3b\x00"),
    ReaderInfo(2, "Virtual PCD 00 00", False, b""),
]


def test_default_prefers_a_reader_with_a_card(monkeypatch):
    monkeypatch.delenv("SBCARD_READER", raising=False)
    assert choose_reader(READERS, None).index == 1
    assert choose_reader(READERS[:1], None).index == 0


def test_index_exact_and_fragment():
    assert choose_reader(READERS, "2").name == "Virtual PCD 00 00"
    assert choose_reader(READERS, "ACS ACR39U ICC Reader 00 00").index == 0
    assert choose_reader(READERS, "virtual").index == 2


def test_ambiguous_fragment_is_refused():
    with pytest.raises(ReaderNotFoundError, match="matches 2 readers"):
        choose_reader(READERS, "acr39u")


def test_unknown_and_out_of_range():
    with pytest.raises(ReaderNotFoundError, match="no reader matches 'gemalto'"):
        choose_reader(READERS, "gemalto")
    with pytest.raises(ReaderNotFoundError, match="no reader with index 7"):
        choose_reader(READERS, "7")
    with pytest.raises(ReaderNotFoundError, match="no card reader found"):
        choose_reader([], None)


def test_env_variable(monkeypatch):
    monkeypatch.setenv("SBCARD_READER", "Virtual")
    assert choose_reader(READERS, None).index == 2


def test_the_psams_reader_is_never_taken_for_the_card(monkeypatch):
    # A counter PC: the PSAM sits in reader 1 (so it "holds a card"); the holder's card is
    # not in yet. The default must not pick the PSAM's reader, and naming it is refused.
    from sbcard.errors import ReaderChoiceError

    monkeypatch.delenv("SBCARD_READER", raising=False)
    psam = {"ACS ACR39U ICC Reader 01 00": "the PSAM (--psam)"}
    assert choose_reader(READERS, None).index == 1                 # without the reservation
    assert choose_reader(READERS, None, psam).index == 0           # the first free reader
    with pytest.raises(ReaderChoiceError, match="holds the PSAM"):
        choose_reader(READERS, "01 00", psam)
    with pytest.raises(ReaderNotFoundError, match="no reader left for the card"):
        choose_reader(READERS[1:2], None, psam)
    monkeypatch.setenv("SBCARD_READER", "1")
    with pytest.raises(ReaderChoiceError):
        choose_reader(READERS, None, psam)
