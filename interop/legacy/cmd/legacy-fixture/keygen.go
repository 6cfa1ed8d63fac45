package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	ecdsakeygen "github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	eddsakeygen "github.com/bnb-chain/tss-lib/v2/eddsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/google/uuid"

	"mpcium-rs/interop/legacy/original"
)

// keygenTimeout bounds one tss-lib keygen of all parties (the original allows 30 s on a cluster;
// here all parties share this process's cores).
const keygenTimeout = 10 * time.Minute

// preParamsTimeout bounds the safe-prime search of all nodes' pre-parameters together; they run
// concurrently, so on a small machine it is generous.
const preParamsTimeout = 30 * time.Minute

// loadOrGeneratePreParams returns one ECDSA pre-parameter set per node: cached ones from dir
// (`node<i>.json`), the missing ones generated concurrently and cached. Every node needs its own
// set: tss-lib rejects equal h1j values.
func loadOrGeneratePreParams(dir string, n int) ([]*ecdsakeygen.LocalPreParams, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sets := make([]*ecdsakeygen.LocalPreParams, n)
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), preParamsTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("node%d.json", i))
		if raw, err := os.ReadFile(path); err == nil {
			var p ecdsakeygen.LocalPreParams
			if err := json.Unmarshal(raw, &p); err != nil || !p.ValidateWithProof() {
				return nil, fmt.Errorf("%s: not a usable tss-lib pre-parameter set; delete it to generate a new one", path)
			}
			sets[i] = &p
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := ecdsakeygen.GeneratePreParamsWithContext(ctx)
			if err != nil {
				errs[i] = fmt.Errorf("node%d pre-parameters: %w", i, err)
				return
			}
			raw, err := json.Marshal(p)
			if err == nil {
				err = os.WriteFile(path, raw, 0o600)
			}
			if err != nil {
				errs[i] = err
				return
			}
			sets[i] = p
		}()
	}
	wg.Wait()
	return sets, errors.Join(errs...)
}

// sortedParties builds the tss-lib party IDs of a keygen as each of the original's nodes does:
// a fresh random UUID as Id, moniker "keygen", the party key of (node ID, version); sorted by key.
func sortedParties(nodeIDs []string, version int) tss.SortedPartyIDs {
	unsorted := make(tss.UnSortedPartyIDs, len(nodeIDs))
	for i, id := range nodeIDs {
		unsorted[i] = tss.NewPartyID(uuid.NewString(), "keygen", original.PartyKey(id, version))
	}
	return tss.SortPartyIDs(unsorted)
}

type partyMaker[T any] func(self *tss.PartyID, out chan<- tss.Message, end chan<- *T) tss.Party

// run runs tss-lib parties of one protocol in this process, delivering each message over its
// wire bytes as a network would, and returns every party's result by party index.
func run[T any](ids tss.SortedPartyIDs, makeParty partyMaker[T]) ([]*T, error) {
	n := len(ids)
	out := make(chan tss.Message, 16*n*n)
	errCh := make(chan error, 4*n)
	type done struct {
		index int
		data  *T
	}
	doneCh := make(chan done, n)
	parties := make([]tss.Party, n)
	for i, id := range ids {
		end := make(chan *T, 1)
		parties[i] = makeParty(id, out, end)
		go func() {
			if data, ok := <-end; ok {
				doneCh <- done{i, data}
			}
		}()
	}
	for _, p := range parties {
		go func() {
			if err := p.Start(); err != nil {
				errCh <- err
			}
		}()
	}
	deliver := func(to tss.Party, wire []byte, from *tss.PartyID, broadcast bool) {
		if _, err := to.UpdateFromBytes(wire, from, broadcast); err != nil {
			errCh <- err
		}
	}
	results := make([]*T, n)
	timeout := time.After(keygenTimeout)
	for remaining := n; remaining > 0; {
		select {
		case msg := <-out:
			wire, routing, err := msg.WireBytes()
			if err != nil {
				return nil, err
			}
			if routing.To == nil {
				for _, p := range parties {
					if p.PartyID().Index != routing.From.Index {
						go deliver(p, wire, routing.From, true)
					}
				}
			} else {
				for _, to := range routing.To {
					go deliver(parties[to.Index], wire, routing.From, false)
				}
			}
		case d := <-doneCh:
			results[d.index] = d.data
			remaining--
		case err := <-errCh:
			return nil, fmt.Errorf("tss-lib: %w", err)
		case <-timeout:
			return nil, fmt.Errorf("tss-lib keygen did not finish within %s", keygenTimeout)
		}
	}
	return results, nil
}

// keygenECDSA runs the original's ECDSA keygen (secp256k1, node i with pre-parameter set i).
func keygenECDSA(ids tss.SortedPartyIDs, nodeOfParty []int, threshold int, preParams []*ecdsakeygen.LocalPreParams) ([]*ecdsakeygen.LocalPartySaveData, error) {
	ctx := tss.NewPeerContext(ids)
	return run(ids, func(self *tss.PartyID, out chan<- tss.Message, end chan<- *ecdsakeygen.LocalPartySaveData) tss.Party {
		params := tss.NewParameters(tss.S256(), ctx, self, len(ids), threshold)
		return ecdsakeygen.NewLocalParty(params, out, end, *preParams[nodeOfParty[self.Index]])
	})
}

// keygenEdDSA runs the original's EdDSA keygen (ed25519).
func keygenEdDSA(ids tss.SortedPartyIDs, threshold int) ([]*eddsakeygen.LocalPartySaveData, error) {
	ctx := tss.NewPeerContext(ids)
	return run(ids, func(self *tss.PartyID, out chan<- tss.Message, end chan<- *eddsakeygen.LocalPartySaveData) tss.Party {
		params := tss.NewParameters(tss.Edwards(), ctx, self, len(ids), threshold)
		return eddsakeygen.NewLocalParty(params, out, end)
	})
}

// nodeOfParty maps each sorted party index to the node (index into nodeIDs) whose key it has.
func nodeOfParty(ids tss.SortedPartyIDs, nodeIDs []string, version int) []int {
	m := make([]int, len(ids))
	for i, id := range ids {
		key := new(big.Int).SetBytes(id.Key)
		for node, nodeID := range nodeIDs {
			if key.Cmp(original.PartyKey(nodeID, version)) == 0 {
				m[i] = node
			}
		}
	}
	return m
}
