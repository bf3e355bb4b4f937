package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/alpespartner/sagas/esquemas"
	"github.com/alpespartner/sagas/eventos"
	"github.com/alpespartner/sagas/internal/bus"
	"github.com/apache/pulsar-client-go/pulsar"
)

// resumenDLQ is what the dead-letter topics of the namespace hold.
type resumenDLQ struct {
	Topicos   []string
	Mensajes  int
	PorTopico map[string]int
	// Validos describes each message that decodes as a valid command,
	// reply or outcome: a message that should have been processed, lost.
	Validos []string
	// Veneno counts the messages that do not decode: poison, rightly parked.
	Veneno int
}

// topicosDe lists the namespace's topics through the admin REST API with
// seg's credentials.
func topicosDe(ctx context.Context, adminURL string, seg bus.Seguridad, ns string) ([]string, error) {
	admin, err := bus.NuevoAdminSeguro(adminURL, seg)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return admin.Topicos(actx, tenant, ns)
}

// leerDLQs lists the namespace's topics through the admin REST API and reads
// every *-DLQ topic from the earliest message with a reader, both with seg's
// credentials.
func leerDLQs(ctx context.Context, adminURL, pulsarURL string, seg bus.Seguridad, ns string, logger *slog.Logger) (resumenDLQ, error) {
	r := resumenDLQ{PorTopico: map[string]int{}}
	topicos, err := topicosDe(ctx, adminURL, seg, ns)
	if err != nil {
		return r, err
	}
	for _, t := range topicos {
		if strings.HasSuffix(t, "-DLQ") || strings.Contains(t, "-DLQ-partition-") {
			r.Topicos = append(r.Topicos, t)
		}
	}
	sort.Strings(r.Topicos)
	if len(r.Topicos) == 0 {
		return r, nil
	}

	comandos, err := eventos.NuevoCodec[eventos.Comando](esquemas.MustAvro(esquemas.ComandoSaga))
	if err != nil {
		return r, err
	}
	respuestas, err := eventos.NuevoCodec[eventos.Respuesta](esquemas.MustAvro(esquemas.RespuestaSaga))
	if err != nil {
		return r, err
	}
	resultados, err := eventos.NuevoCodec[eventos.Evento](esquemas.MustAvro(esquemas.EventoSaga))
	if err != nil {
		return r, err
	}
	cliente, err := bus.Conectar(pulsarURL, logger, bus.ConSeguridad(seg))
	if err != nil {
		return r, err
	}
	defer cliente.Close()
	err = leerDesdeElPrincipio(ctx, cliente, seg, r.Topicos, func(t string, msg pulsar.Message) {
		r.Mensajes++
		r.PorTopico[t]++
		motivo := msg.Properties()["dlq_motivo"]
		corto := t[strings.LastIndex(t, "/")+1:]
		if c, err := comandos.Decodificar(msg.Payload()); err == nil && c.Validar() == nil {
			r.Validos = append(r.Validos, fmt.Sprintf("%s: comando válido %s saga %s paso %s intento %d (dlq_motivo: %s)", corto, c.Nombre(), c.SagaID, c.Paso, c.Intento, motivo))
			return
		}
		if x, err := respuestas.Decodificar(msg.Payload()); err == nil && x.Validar() == nil {
			r.Validos = append(r.Validos, fmt.Sprintf("%s: respuesta válida %s saga %s paso %s %s (dlq_motivo: %s)", corto, x.Type, x.SagaID, x.Paso, x.Accion, motivo))
			return
		}
		if x, err := resultados.Decodificar(msg.Payload()); err == nil && x.SagaID != "" && x.Estado != "" {
			r.Validos = append(r.Validos, fmt.Sprintf("%s: resultado válido %s saga %s (dlq_motivo: %s)", corto, x.Type, x.SagaID, motivo))
			return
		}
		r.Veneno++
	})
	if err != nil {
		return r, err
	}
	return r, nil
}

// leerDesdeElPrincipio reads every message of each topic from the earliest
// and hands it to fn; a reader that cannot be opened names the role's cause.
func leerDesdeElPrincipio(ctx context.Context, cliente pulsar.Client, seg bus.Seguridad, topicos []string, fn func(topico string, msg pulsar.Message)) error {
	for _, t := range topicos {
		lector, err := abrirLector(ctx, cliente, t)
		if err != nil {
			return fmt.Errorf("leer %s: %w", t, bus.ConRol(bus.Causa(cliente, "leer", t, err), seg))
		}
		for lector.HasNext() {
			nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			msg, err := lector.Next(nctx)
			cancel()
			if err != nil {
				lector.Close()
				return fmt.Errorf("leer %s: %w", t, err)
			}
			fn(t, msg)
		}
		lector.Close()
	}
	return nil
}

// abrirLector opens a reader of t from the earliest message, retrying for up
// to 30 s: a broker restarted by a fault plan a moment before may still
// refuse to load a topic ("Not enough non-faulty bookies available", seen
// in CI right after a kill -9 and restart of the standalone broker). An
// authorization error is not retried.
func abrirLector(ctx context.Context, cliente pulsar.Client, t string) (pulsar.Reader, error) {
	limite := time.Now().Add(30 * time.Second)
	for {
		lector, err := cliente.CreateReader(pulsar.ReaderOptions{Topic: t, StartMessageID: pulsar.EarliestMessageID()})
		if err == nil || errors.Is(bus.Causa(cliente, "leer", t, err), bus.ErrAutorizacion) || time.Now().After(limite) {
			return lector, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}
