package basedatos

import "testing"

func TestCapacidadTLSDelSaludo(t *testing.T) {
	saludo := func(capacidades uint16) []byte {
		p := []byte{10}
		p = append(p, "10.11.19-MariaDB"...)
		p = append(p, 0, 1, 0, 0, 0) // NUL, thread id
		p = append(p, make([]byte, 8)...)
		p = append(p, 0, byte(capacidades), byte(capacidades>>8))
		return p
	}
	if ofrece, err := capacidadTLS(saludo(0xfffe)); err != nil || !ofrece {
		t.Errorf("with CLIENT_SSL: %v %v", ofrece, err)
	}
	if ofrece, err := capacidadTLS(saludo(0xfffe &^ 0x0800)); err != nil || ofrece {
		t.Errorf("without CLIENT_SSL: %v %v", ofrece, err)
	}
	if _, err := capacidadTLS([]byte{0xff, 1, 2}); err == nil {
		t.Error("an error packet must not parse as a greeting")
	}
	if _, err := capacidadTLS(saludo(0)[:20]); err == nil {
		t.Error("a short greeting must not parse")
	}
}
