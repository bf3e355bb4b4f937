package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Pulsar client sends only its lookups to the service URL: a lookup
// answers with the owning broker's advertised address, and producers and
// consumers connect there, past a plain TCP proxy. So the broker's
// answers are rewritten on their way through the proxy: every lookup
// response gets proxy_through_service_url=true, which makes the client
// reach that broker through the service URL, this proxy, as it does behind
// a Pulsar proxy. Field numbers are those of PulsarApi.proto.
const (
	campoLookupTopicResponse = 24 // BaseCommand.lookupTopicResponse
	campoProxyThroughService = 8  // CommandLookupTopicResponse.proxy_through_service_url
	// maxTramaPulsar bounds one frame (the broker's default maxMessageSize is
	// 5 MB, plus headers).
	maxTramaPulsar = 16 << 20
)

// copiarPulsar forwards the broker's frames from src to dst, holding
// while the proxy is cut and rewriting lookup responses.
func (p *proxy) copiarPulsar(dst, src net.Conn) {
	r := bufio.NewReaderSize(src, 64*1024)
	var cab [4]byte
	for {
		if !p.esperar() {
			return
		}
		if _, err := io.ReadFull(r, cab[:]); err != nil {
			return
		}
		total := binary.BigEndian.Uint32(cab[:])
		if total > maxTramaPulsar {
			return
		}
		trama := make([]byte, total)
		if _, err := io.ReadFull(r, trama); err != nil {
			return
		}
		salida, err := reescribirTramaPulsar(trama)
		if err != nil {
			salida = trama // not ours to judge: forward it unchanged
		}
		if !p.esperar() {
			return
		}
		var tam [4]byte
		binary.BigEndian.PutUint32(tam[:], uint32(len(salida)))
		if _, err := dst.Write(append(tam[:], salida...)); err != nil {
			return
		}
	}
}

// reescribirTramaPulsar takes one frame without its total size
// ([cmdSize][BaseCommand][payload...]) and returns it with
// proxy_through_service_url=true in a lookup response, or unchanged.
func reescribirTramaPulsar(trama []byte) ([]byte, error) {
	if len(trama) < 4 {
		return nil, errors.New("trama corta")
	}
	n := binary.BigEndian.Uint32(trama)
	if uint64(n) > uint64(len(trama)-4) {
		return nil, fmt.Errorf("comando de %d bytes en una trama de %d", n, len(trama))
	}
	cmd, resto := trama[4:4+n], trama[4+n:]
	var nuevo []byte
	cambio := false
	for b := cmd; len(b) > 0; {
		num, tipo, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		m := protowire.ConsumeFieldValue(num, tipo, b[l:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		if num == campoLookupTopicResponse && tipo == protowire.BytesType {
			interno, _ := protowire.ConsumeBytes(b[l:])
			// The last value of a scalar field wins: appending overrides
			// whatever the broker said.
			interno = protowire.AppendTag(append([]byte(nil), interno...), campoProxyThroughService, protowire.VarintType)
			interno = protowire.AppendVarint(interno, 1)
			nuevo = protowire.AppendTag(nuevo, num, protowire.BytesType)
			nuevo = protowire.AppendBytes(nuevo, interno)
			cambio = true
		} else {
			nuevo = append(nuevo, b[:l+m]...)
		}
		b = b[l+m:]
	}
	if !cambio {
		return trama, nil
	}
	salida := binary.BigEndian.AppendUint32(nil, uint32(len(nuevo)))
	salida = append(salida, nuevo...)
	return append(salida, resto...), nil
}
