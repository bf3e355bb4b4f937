package main

import (
	"bytes"
	"encoding/binary"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// tramaPulsar builds [cmdSize][cmd][payload] with cmd from raw protobuf.
func tramaPulsar(cmd, payload []byte) []byte {
	t := binary.BigEndian.AppendUint32(nil, uint32(len(cmd)))
	return append(append(t, cmd...), payload...)
}

func TestReescribirTramaPulsarPideProxyEnLasRespuestasDeLookup(t *testing.T) {
	var lr []byte
	lr = protowire.AppendTag(lr, 1, protowire.BytesType)
	lr = protowire.AppendString(lr, "pulsar://127.0.0.1:6661")
	lr = protowire.AppendTag(lr, 3, protowire.VarintType)
	lr = protowire.AppendVarint(lr, 1) // Connect
	lr = protowire.AppendTag(lr, campoProxyThroughService, protowire.VarintType)
	lr = protowire.AppendVarint(lr, 0) // the broker said: connect directly
	var cmd []byte
	cmd = protowire.AppendTag(cmd, 1, protowire.VarintType)
	cmd = protowire.AppendVarint(cmd, 24) // LOOKUP_RESPONSE
	cmd = protowire.AppendTag(cmd, campoLookupTopicResponse, protowire.BytesType)
	cmd = protowire.AppendBytes(cmd, lr)

	out, err := reescribirTramaPulsar(tramaPulsar(cmd, nil))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.BigEndian.Uint32(out)
	if int(n) != len(out)-4 {
		t.Fatalf("command size %d, frame holds %d", n, len(out)-4)
	}
	// Decode: the last proxy_through_service_url inside the lookup
	// response must be 1, everything else kept.
	var proxyThrough uint64 = 99
	var url string
	for b := out[4:]; len(b) > 0; {
		num, typ, l := protowire.ConsumeTag(b)
		b = b[l:]
		if num == campoLookupTopicResponse && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			for c := v; len(c) > 0; {
				num2, typ2, l2 := protowire.ConsumeTag(c)
				c = c[l2:]
				switch {
				case num2 == campoProxyThroughService:
					x, m2 := protowire.ConsumeVarint(c)
					proxyThrough, c = x, c[m2:]
				case num2 == 1:
					s, m2 := protowire.ConsumeString(c)
					url, c = s, c[m2:]
				default:
					c = c[protowire.ConsumeFieldValue(num2, typ2, c):]
				}
			}
			b = b[m:]
			continue
		}
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	if proxyThrough != 1 || url != "pulsar://127.0.0.1:6661" {
		t.Fatalf("rewritten lookup response: proxy_through_service_url=%d url=%q", proxyThrough, url)
	}
}

func TestReescribirTramaPulsarDejaIgualOtrosComandosYSuPayload(t *testing.T) {
	var cmd []byte
	cmd = protowire.AppendTag(cmd, 1, protowire.VarintType)
	cmd = protowire.AppendVarint(cmd, 9) // MESSAGE
	cmd = protowire.AppendTag(cmd, 11, protowire.BytesType)
	cmd = protowire.AppendBytes(cmd, []byte{8, 1, 16, 2})
	trama := tramaPulsar(cmd, []byte("\x0e\x01metadata y payload"))
	out, err := reescribirTramaPulsar(trama)
	if err != nil || !bytes.Equal(out, trama) {
		t.Fatalf("a MESSAGE frame changed: %v\n%q\n%q", err, trama, out)
	}
}
