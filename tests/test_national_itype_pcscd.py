"""iType 3 and 4 between two PC/SC readers (issue #13: "iType: 1 contact, 2 contactless, 3 auto
contact first, 4 auto contactless first — mapped to readers named in a configuration file").

Semantics: the reader spec the public repository carries, ``gdgly/SI_3rdCard``
``docs/四川省社会保障卡读写机具规范2.0.doc`` §9.1.1.2 ("3-自动寻卡，接触式操作卡优先；4-自动寻卡，
非接触式操作卡优先"). vpcd gives pcscd two readers: "Virtual PCD 00 00" is the contact reader
here, "Virtual PCD 00 01" the contactless one (the plugin's ``pcscd_card`` serves slot 1 only;
slot 0 is served with the plugin's ``PcscdCard(…, slot=0)`` and held empty with its
``slot_lock``, so no other test process puts a card there meanwhile).
"""

from __future__ import annotations

import pytest

from sbcard.national import codes
from sbcard.national.config import DriverConfig
from sbcard.national.driver import SSCardDriver
from sbcard.national.lines import split_fields
from sbcard.sim.persona import load_persona
from sbcard.testing.cards import PcscdCard
from sbcard.testing.pcscd import slot_lock

pytestmark = pytest.mark.pcscd

CONTACT, CONTACTLESS = 0, 1


def _names(d: SSCardDriver, itype: int) -> tuple[int, str]:
    code, line = d.iReadCardBas(itype)
    return code, split_fields(line)[4] if code == 0 else line


def test_itype_3_and_4_find_the_card_in_either_reader(pcscd_service):
    d = SSCardDriver(DriverConfig(contact_reader=pcscd_service.reader(CONTACT),
                                  contactless_reader=pcscd_service.reader(CONTACTLESS),
                                  key_source="keys", keys="test"))
    tapped = PcscdCard(pcscd_service, load_persona("contactless"), slot=CONTACTLESS)
    held = PcscdCard(pcscd_service, load_persona("demo"), slot=CONTACT)

    # Only the contactless reader holds a card; the contact reader is empty.
    with slot_lock(pcscd_service.port(CONTACT)):
        if any(name == pcscd_service.reader(CONTACT) and present
               for name, present, _atr in pcscd_service.readers()):
            pytest.skip(f"{pcscd_service.reader(CONTACT)} holds a card no test put there")
        tapped.insert()
        try:
            assert d.iReadCardBas(1) == (codes.NO_CARD, "无卡")
            assert _names(d, 3) == (0, "买买提·测试")      # contact first: empty, then contactless
            assert _names(d, 4) == (0, "买买提·测试")
            assert _names(d, 2) == (0, "买买提·测试")
            code, step1 = d.iReadCardBas_HSM_Step1(3)       # the HSM steps fall back alike
            assert code == 0 and split_fields(step1)[1].startswith("3B8D8001")
        finally:
            tapped.remove()

    # A card in each reader: each automatic iType prefers its own kind.
    held.insert()
    try:
        tapped.insert()
        try:
            assert _names(d, 3) == (0, "测试一")             # contact first
            assert _names(d, 4) == (0, "买买提·测试")        # contactless first
        finally:
            tapped.remove()
        assert _names(d, 4) == (0, "测试一")                 # contactless empty: the contact card
        assert d.iReadCardBas(2) == (codes.NO_CARD, "无卡")
    finally:
        held.remove()
    assert d.iReadCardBas(3) == (codes.NO_CARD, "无卡")     # no card anywhere
    d.close()
