// Package ciclo runs a process's long-running components as one list: it
// starts them in order, waiting for each to be ready before starting the
// next, and stops them in reverse order, each after the ones started later
// have returned, within one deadline.
//
// A component is anything with Correr(ctx) error that blocks until ctx ends
// and returns once it has stopped and released what it started.
package ciclo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Componente is a long-running part of a process. Correr blocks until ctx
// ends (or a fatal error) and returns after the component has stopped and
// released what it started; it returns nil when stopped by ctx.
type Componente interface {
	Correr(ctx context.Context) error
}

// Preparado is a Componente that says when it is ready (subscribed,
// listening): Listo's channel is closed then. Grupo starts the next
// component only after that.
type Preparado interface {
	Componente
	Listo() <-chan struct{}
}

// Func adapts a function to Componente.
type Func func(ctx context.Context) error

// Correr calls f.
func (f Func) Correr(ctx context.Context) error { return f(ctx) }

// Parte is a named component of a Grupo; the name appears in errors.
type Parte struct {
	Nombre     string
	Componente Componente
}

// PlazoPorDefecto bounds the stop of a Grupo whose Plazo is zero.
const PlazoPorDefecto = 30 * time.Second

// Grupo runs Partes in order. The zero value runs nothing.
type Grupo struct {
	Partes []Parte
	// Plazo bounds the whole stop; default PlazoPorDefecto. Components that
	// have not returned by then are abandoned and named in the error.
	Plazo time.Duration
	// Listo, when not nil, is called once every part is ready.
	Listo func()
	// Apagando, when not nil, is called when the stop begins.
	Apagando func(motivo error)
}

type enMarcha struct {
	nombre   string
	cancelar context.CancelFunc
	hecho    chan struct{}
	err      error // set before hecho is closed
	// reportado: err already is the failure that began the stop.
	reportado bool
}

func (m *enMarcha) fallo() error {
	m.reportado = true
	return fmt.Errorf("%s: %w", m.nombre, m.err)
}

// Correr starts the parts in order and blocks until ctx ends or a part
// fails (returns an error, or returns nil before it was ready); then it stops
// the started parts in reverse order. A part that returns nil once ready has
// simply finished; the others keep running. Correr returns the first
// failure joined with any error met while stopping, or nil.
func (g *Grupo) Correr(ctx context.Context) error {
	// Each part gets its own context, detached from ctx, so that the parts
	// stop one at a time in reverse order.
	base := context.WithoutCancel(ctx)
	fin := make(chan *enMarcha, len(g.Partes))
	var corriendo []*enMarcha
	var fallo error
	for _, p := range g.Partes {
		pctx, cancelar := context.WithCancel(base)
		m := &enMarcha{nombre: p.Nombre, cancelar: cancelar, hecho: make(chan struct{})}
		corriendo = append(corriendo, m)
		go func() {
			m.err = p.Componente.Correr(pctx)
			close(m.hecho)
			fin <- m
		}()
		if fallo = esperarListo(ctx, p, m); fallo != nil || ctx.Err() != nil {
			break
		}
	}
	if fallo == nil && ctx.Err() == nil {
		if g.Listo != nil {
			g.Listo()
		}
		fallo = esperarFallo(ctx, fin)
	}
	if g.Apagando != nil {
		g.Apagando(fallo)
	}
	return errors.Join(fallo, g.detener(corriendo))
}

// esperarListo waits until m is ready, has failed, or ctx ended.
func esperarListo(ctx context.Context, p Parte, m *enMarcha) error {
	pr, ok := p.Componente.(Preparado)
	if !ok {
		return nil
	}
	select {
	case <-pr.Listo():
		return nil
	case <-m.hecho:
		if m.err != nil {
			return m.fallo()
		}
		return fmt.Errorf("%s: terminó antes de estar listo", m.nombre)
	case <-ctx.Done():
		return nil
	}
}

// esperarFallo blocks until ctx ends or a part returns an error.
func esperarFallo(ctx context.Context, fin <-chan *enMarcha) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-fin:
			if m.err != nil {
				return m.fallo()
			}
		}
	}
}

// detener cancels the parts newest first, waiting for each to return, all
// within the group's deadline.
func (g *Grupo) detener(corriendo []*enMarcha) error {
	plazo := g.Plazo
	if plazo <= 0 {
		plazo = PlazoPorDefecto
	}
	limite := time.NewTimer(plazo)
	defer limite.Stop()
	var errs []error
	for i := len(corriendo) - 1; i >= 0; i-- {
		m := corriendo[i]
		m.cancelar()
		select {
		case <-m.hecho:
			if m.err != nil && !m.reportado {
				errs = append(errs, fmt.Errorf("detener %s: %w", m.nombre, m.err))
			}
		case <-limite.C:
			var sin []string
			for _, r := range corriendo[:i+1] {
				r.cancelar()
				select {
				case <-r.hecho:
				default:
					sin = append(sin, r.nombre)
				}
			}
			return errors.Join(append(errs, fmt.Errorf("no se detuvieron en %s: %v", plazo, sin))...)
		}
	}
	return errors.Join(errs...)
}

// Cada is a component that runs trabajo every intervalo (the first time one
// intervalo after the start) until ctx ends. A failed run is logged and the
// next one comes at its time: periodic housekeeping never stops a process.
func Cada(nombre string, intervalo time.Duration, trabajo func(ctx context.Context) error, logger *slog.Logger) Componente {
	return Func(func(ctx context.Context) error {
		t := time.NewTicker(intervalo)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				if err := trabajo(ctx); err != nil && ctx.Err() == nil {
					logger.Warn(nombre+": falló; se reintentará en el próximo intervalo", "err", err, "intervalo", intervalo.String())
				}
			}
		}
	})
}
