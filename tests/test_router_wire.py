"""The router's byte-level helpers: multipart form fields read and rewritten without touching
file parts, and response ids found in a body however it is chunked."""

from __future__ import annotations

from agent_manager.router.multipart import boundary, form_field, with_form_field
from agent_manager.router.pins import IdSniffer

MARK = b"XyZ"
BODY = (
    b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\nRIFF model=nobody\r\n"
    b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o\r\n'
    b'--XyZ\r\nContent-Disposition: form-data; name="stream"\r\n\r\ntrue\r\n'
    b"--XyZ--\r\n"
)


def test_the_boundary_comes_from_a_multipart_content_type_only():
    assert boundary("multipart/form-data; boundary=XyZ") == MARK
    assert boundary('multipart/form-data; boundary="XyZ"; charset=utf-8') == MARK
    assert boundary("application/json") is None


def test_the_model_field_is_read_and_rewritten_and_the_file_part_is_untouched():
    assert form_field(BODY, MARK, "model") == "gpt-4o"
    assert form_field(BODY, MARK, "stream") == "true"
    assert form_field(BODY, MARK, "language") is None
    rewritten = with_form_field(BODY, MARK, "model", "product-owner")
    assert form_field(rewritten, MARK, "model") == "product-owner"
    assert rewritten.replace(b"product-owner", b"gpt-4o") == BODY


def test_a_response_id_split_across_chunks_is_found_once():
    found: list[str] = []
    sniff = IdSniffer(found.append)
    event = b'event: response.created\ndata: {"response": {"id": "resp_0123abcd", "x": 1}}\n\n'
    for cut in range(0, len(event), 7):
        sniff(event[cut : cut + 7])
    sniff(b'{"id": "resp_other"}')
    assert found == ["resp_0123abcd"]
