// Command kms-initiator creates a P-256 signing key in an AWS KMS (emulator) and writes an
// initiator identity file for it, which `mpcium-cli devnet --initiator-identity` makes the nodes
// trust. It prints the key ID. Used by scripts/interop-go.sh against moto.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"mpcium-rs/interop/go/mpcwire"
)

func main() {
	endpoint := flag.String("endpoint", "", "KMS endpoint URL (the emulator)")
	identity := flag.String("identity", "", "where to write the initiator identity JSON")
	flag.Parse()
	if *endpoint == "" || *identity == "" {
		fmt.Fprintln(os.Stderr, "usage: kms-initiator -endpoint URL -identity FILE")
		os.Exit(2)
	}
	if err := run(*endpoint, *identity); err != nil {
		fmt.Fprintln(os.Stderr, "kms-initiator:", err)
		os.Exit(1)
	}
}

func run(endpoint, identityPath string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := mpcwire.KMSOptions{Region: "us-east-1", Endpoint: endpoint, AccessKeyID: "test",
		SecretAccessKey: "test-secret"}
	created, err := mpcwire.NewKMSClient(opts).CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec:  types.KeySpecEccNistP256,
		KeyUsage: types.KeyUsageTypeSignVerify,
	})
	if err != nil {
		return fmt.Errorf("CreateKey: %w", err)
	}
	opts.KeyID = aws.ToString(created.KeyMetadata.KeyId)
	signer, err := mpcwire.NewKMSSigner(ctx, opts)
	if err != nil {
		return err
	}
	public, err := signer.PublicKeyHex()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	doc, err := json.MarshalIndent(map[string]string{
		"node_name":    "kms_initiator",
		"algorithm":    mpcwire.AlgorithmP256,
		"public_key":   public,
		"created_at":   time.Now().UTC().Format(time.RFC3339),
		"created_by":   "interop-go",
		"machine_os":   runtime.GOOS,
		"machine_name": host,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(identityPath, doc, 0o600); err != nil {
		return err
	}
	fmt.Println(opts.KeyID)
	return nil
}
