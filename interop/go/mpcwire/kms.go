package mpcwire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMSOptions say where an AWS KMS key is (Endpoint: an emulator or a VPC endpoint; empty: AWS).
type KMSOptions struct {
	Region          string
	KeyID           string
	Endpoint        string
	AccessKeyID     string
	SecretAccessKey string
}

// NewKMSClient is a KMS client for opts (static credentials when given).
func NewKMSClient(opts KMSOptions) *kms.Client {
	return kms.New(kms.Options{
		Region:       opts.Region,
		BaseEndpoint: optional(opts.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, ""),
	})
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// KMSSigner signs as a P-256 initiator with a KMS key (ECDSA_SHA_256 over the raw message, DER).
type KMSSigner struct {
	client    *kms.Client
	keyID     string
	publicDER []byte
}

// NewKMSSigner reads the key's public half and checks that it is a P-256 signing key.
func NewKMSSigner(ctx context.Context, opts KMSOptions) (*KMSSigner, error) {
	if opts.Region == "" || opts.KeyID == "" {
		return nil, errors.New("KMS signer needs a region and a key ID")
	}
	client := NewKMSClient(opts)
	out, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(opts.KeyID)})
	if err != nil {
		return nil, fmt.Errorf("KMS GetPublicKey: %w", err)
	}
	// The spec may be absent (emulators); the key's curve is checked below in any case.
	if out.KeySpec != "" && out.KeySpec != types.KeySpecEccNistP256 {
		return nil, fmt.Errorf("KMS key %s is %s, not ECC_NIST_P256", opts.KeyID, out.KeySpec)
	}
	parsed, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, err
	}
	if key, ok := parsed.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
		return nil, errors.New("KMS public key is not P-256")
	}
	return &KMSSigner{client: client, keyID: opts.KeyID, publicDER: out.PublicKey}, nil
}

// Sign asks KMS for an ECDSA_SHA_256 signature of data (MessageType RAW: KMS hashes it).
func (s *KMSSigner) Sign(data []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.keyID),
		Message:          data,
		MessageType:      types.MessageTypeRaw,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	})
	if err != nil {
		return nil, fmt.Errorf("KMS Sign: %w", err)
	}
	return out.Signature, nil
}

// Algorithm is p256.
func (s *KMSSigner) Algorithm() string { return AlgorithmP256 }

// PublicKeyHex is hex of the key's PKIX DER.
func (s *KMSSigner) PublicKeyHex() (string, error) { return hex.EncodeToString(s.publicDER), nil }
