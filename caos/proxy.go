package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// proxy is a TCP proxy between one process and a dependency (MariaDB, the
// broker) that can be cut and healed. Cut, it stops forwarding in both
// directions but keeps every connection open, and holds new connections
// without dialing the destination: to both ends it looks like a network
// partition (silence, no reset). Healed, it forwards again what was held.
type proxy struct {
	ln      net.Listener
	destino string

	mu      sync.Mutex
	abierto chan struct{} // closed while forwarding; open (blocking) while cut
	conns   map[net.Conn]bool
	cerrado bool
	wg      sync.WaitGroup
}

// nuevoProxy listens on a free loopback port and forwards to destino.
func nuevoProxy(destino string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy hacia %s: %w", destino, err)
	}
	abierto := make(chan struct{})
	close(abierto)
	p := &proxy{ln: ln, destino: destino, abierto: abierto, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.aceptar()
	return p, nil
}

// Direccion is where clients connect (127.0.0.1:<port>).
func (p *proxy) Direccion() string { return p.ln.Addr().String() }

// Puerto is the proxy's listening port.
func (p *proxy) Puerto() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Cortar stops forwarding; connections stay open.
func (p *proxy) Cortar() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.abierto:
		p.abierto = make(chan struct{})
	default:
	}
}

// Sanar forwards again.
func (p *proxy) Sanar() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.abierto:
	default:
		close(p.abierto)
	}
}

// Conexiones is how many connections (client and destination sides) are
// open now.
func (p *proxy) Conexiones() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// esperar blocks while the proxy is cut; false once it is closed.
func (p *proxy) esperar() bool {
	p.mu.Lock()
	ch, cerrado := p.abierto, p.cerrado
	p.mu.Unlock()
	if cerrado {
		return false
	}
	<-ch
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.cerrado
}

// Cerrar stops listening and closes every connection.
func (p *proxy) Cerrar() {
	p.mu.Lock()
	if p.cerrado {
		p.mu.Unlock()
		return
	}
	p.cerrado = true
	select {
	case <-p.abierto:
	default:
		close(p.abierto)
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

func (p *proxy) registrar(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cerrado {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) olvidar(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) aceptar() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if !p.registrar(c) {
			return
		}
		p.wg.Add(1)
		go p.atender(c)
	}
}

// atender connects one client to the destination (once not cut) and
// forwards both ways until either side closes.
func (p *proxy) atender(cliente net.Conn) {
	defer p.wg.Done()
	defer p.olvidar(cliente)
	if !p.esperar() {
		return
	}
	destino, err := net.DialTimeout("tcp", p.destino, 5*time.Second)
	if err != nil {
		return
	}
	if !p.registrar(destino) {
		return
	}
	defer p.olvidar(destino)
	hecho := make(chan struct{}, 2)
	go func() { p.copiar(destino, cliente); hecho <- struct{}{} }()
	go func() { p.copiar(cliente, destino); hecho <- struct{}{} }()
	// One direction ended (EOF or error): close both, which ends the other.
	<-hecho
	cliente.Close()
	destino.Close()
	<-hecho
}

// copiar forwards src to dst, holding every read while the proxy is cut.
func (p *proxy) copiar(dst, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		if !p.esperar() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.esperar() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: atender closes both
		}
	}
}
