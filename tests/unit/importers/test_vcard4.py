"""vCard4 (XEP-0292) to vcard-temp (XEP-0054) as Prosody 0.12's mod_vcard_legacy maps it."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring

from heron.importers.vcard4 import vcard_temp_of_vcard4
from heron.xmpp.features.local import to_text

VCARD4 = """<vcard xmlns="urn:ietf:params:xml:ns:vcard-4.0">
<fn><text>Pat Prosody</text></fn>
<n><surname>Prosody</surname><given>Pat</given></n>
<nickname><text>pp</text></nickname>
<email><parameters><type><text>work</text></type></parameters><text>pat@example.com</text></email>
<tel><uri>tel:+331234</uri></tel>
<adr><street>1 rue</street><country>FR</country></adr>
<impp><uri>xmpp:pat@localhost</uri></impp>
<impp><uri>sip:pat@localhost</uri></impp>
<org><text>Falcot</text></org>
<x-unknown><text>dropped</text></x-unknown>
</vcard>"""


def test_every_field_mod_vcard_legacy_maps_comes_across_and_others_do_not() -> None:
    converted = to_text(vcard_temp_of_vcard4(fromstring(VCARD4)))
    assert converted == (
        '<vCard xmlns="vcard-temp"><FN>Pat Prosody</FN><N><FAMILY>Prosody</FAMILY>'
        "<GIVEN>Pat</GIVEN><MIDDLE/><PREFIX/><SUFFIX/></N><NICKNAME>pp</NICKNAME>"
        "<EMAIL><USERID>pat@example.com</USERID><INTERNET/><WORK/></EMAIL>"
        "<TEL><NUMBER>+331234</NUMBER></TEL><ADR><POBOX/><EXTADD/><STREET>1 rue</STREET>"
        "<LOCALITY/><REGION/><PCODE/><CTRY>FR</CTRY></ADR><JABBERID>pat@localhost</JABBERID>"
        "<ORG><ORGNAME>Falcot</ORGNAME></ORG></vCard>"
    )


def test_an_empty_vcard4_gives_the_empty_fn_and_n_prosody_answers_with() -> None:
    converted = to_text(vcard_temp_of_vcard4(fromstring(VCARD4.split(">")[0] + "/>")))
    assert converted == (
        '<vCard xmlns="vcard-temp"><FN/><N><FAMILY/><GIVEN/><MIDDLE/><PREFIX/><SUFFIX/></N></vCard>'
    )
