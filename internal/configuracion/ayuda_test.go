package configuracion

import "testing"

func TestPideAyudaSoloConUnaBanderaDeAyudaAntesDeDobleGuion(t *testing.T) {
	casos := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-h"}, true},
		{[]string{"-n", "10", "--help"}, true},
		{[]string{"-help"}, true},
		{[]string{"-n", "10"}, false},
		{[]string{"--", "-h"}, false},
		{[]string{"-hola"}, false},
	}
	for _, c := range casos {
		if got := PideAyuda(c.args); got != c.want {
			t.Errorf("PideAyuda(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}
