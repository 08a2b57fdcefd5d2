{{/* Chart name, truncated to a DNS label. */}}
{{- define "tessera.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: <release>-tessera, or the release name if it already says tessera. */}}
{{- define "tessera.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "tessera.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tessera.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tessera
{{- end }}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "plugin"). */}}
{{- define "tessera.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tessera.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The one image of both subcommands: repo:tag, repo@digest, or repo:tag@digest when both
are set (the tag is then informational; the runtime pulls the digest). */}}
{{- define "tessera.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- if .Values.image.tag }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- end }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret the extender serves HTTPS from (and the second scheduler reads ca.crt from). */}}
{{- define "tessera.extender.tlsSecret" -}}
{{- default (printf "%s-extender-tls" (include "tessera.fullname" .)) .Values.extender.tls.secretName }}
{{- end }}

{{/* DNS names the extender is reached by (its Service), for its certificate and serverName. */}}
{{- define "tessera.extender.host" -}}
{{- printf "%s-extender.%s.svc" (include "tessera.fullname" .) .Release.Namespace }}
{{- end }}

{{/* The kubelet plugin's own directory (DRA socket, default state dir). */}}
{{- define "tessera.pluginDir" -}}
{{- default (printf "/var/lib/kubelet/plugins/%s" .Values.driverName) .Values.plugin.pluginDir }}
{{- end }}

{{- define "tessera.plugin.serviceAccountName" -}}
{{- if .Values.plugin.serviceAccount.create }}
{{- default (printf "%s-plugin" (include "tessera.fullname" .)) .Values.plugin.serviceAccount.name }}
{{- else }}
{{- required "plugin.serviceAccount.name is required when plugin.serviceAccount.create is false" .Values.plugin.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tessera.extender.serviceAccountName" -}}
{{- if .Values.extender.serviceAccount.create }}
{{- default (printf "%s-extender" (include "tessera.fullname" .)) .Values.extender.serviceAccount.name }}
{{- else }}
{{- required "extender.serviceAccount.name is required when extender.serviceAccount.create is false" .Values.extender.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* In-cluster URL of the extender verbs, as kube-scheduler's urlPrefix. */}}
{{- define "tessera.extender.url" -}}
{{- $scheme := ternary "https" "http" .Values.extender.tls.enabled }}
{{- $prefix := trimPrefix "/" .Values.extender.urlPrefix }}
{{- printf "%s://%s-extender.%s.svc:%v/%s" $scheme (include "tessera.fullname" .) .Release.Namespace .Values.extender.service.port $prefix | trimSuffix "/" }}
{{- end }}

{{/* Flags shared by both subcommands: logging and API server access. */}}
{{- define "tessera.commonArgs" -}}
- --log-level={{ .root.Values.logging.level }}
- --log-format={{ .root.Values.logging.format }}
- --admin-addr=0.0.0.0:{{ .component.adminPort }}
{{- with .component.kubeconfig }}
- --kubeconfig={{ . }}
{{- end }}
{{- with .component.kubeContext }}
- --kube-context={{ . }}
{{- end }}
{{- end }}

{{/* Fail early on values that cannot work together. */}}
{{- define "tessera.validate" -}}
{{- if and .Values.plugin.fakeGpus .Values.plugin.fakeInventory }}
{{- fail "plugin.fakeGpus and plugin.fakeInventory are mutually exclusive" }}
{{- end }}
{{- if and .Values.extender.tls.certManager.enabled (not .Values.extender.tls.enabled) }}
{{- fail "extender.tls.certManager.enabled needs extender.tls.enabled: the Certificate is for the extender's HTTPS" }}
{{- end }}
{{- if and .Values.extender.tls.certManager.enabled (not .Values.extender.tls.certManager.issuerRef.name) }}
{{- fail "extender.tls.certManager.issuerRef.name is required: the cert-manager Issuer or ClusterIssuer that signs the extender's certificate" }}
{{- end }}
{{- if and (or .Values.plugin.fakeGpus .Values.plugin.fakeInventory) (ne .Values.plugin.migStrategy "static") }}
{{- fail "plugin.migStrategy applies to real GPUs only: fake GPUs fix their MIG mode in the profile (h100x8-mig-static, h100x8-mig-dynamic) or the inventory file's mig.mode" }}
{{- end }}
{{- if and (eq .Release.Namespace "default") (not .Values.allowDefaultNamespace) }}
{{- fail "refusing to install into the namespace \"default\": the plugin runs privileged and needs a namespace of its own labelled pod-security.kubernetes.io/enforce=privileged (docs/install.md); use --namespace tessera, or set allowDefaultNamespace=true" }}
{{- end }}
{{- include "tessera.preflight" . }}
{{- if and .Values.scheduler.enabled (not .Values.extender.enabled) }}
{{- fail "scheduler.enabled needs extender.enabled: the second scheduler calls the extender" }}
{{- end }}
{{- if gt (len .Values.driverName) 63 }}
{{- fail "driverName must be at most 63 characters (a DNS subdomain)" }}
{{- end }}
{{- end }}

{{/* Checks against the live cluster. `lookup` answers only in `helm install`/`upgrade` against a
cluster; `helm template` and client-side dry runs get an empty answer, so offline rendering
(Helm 3 or 4, with or without --kube-version) is never refused. This replaces Chart.yaml's
kubeVersion, which Helm checks against its built-in default version when rendering offline
(v1.32.0 for Helm 3.17) and so refused `helm template` without --kube-version. */}}
{{- define "tessera.preflight" -}}
{{- if .Values.preflight.enabled }}
{{- $system := lookup "v1" "Namespace" "" "kube-system" }}
{{- if $system }}
{{- if semverCompare "<1.34.0-0" .Capabilities.KubeVersion.Version }}
{{- fail (printf "tessera needs Kubernetes 1.34 or later (resource.k8s.io/v1); this cluster is %s (docs/compatibility.md)" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $ns := lookup "v1" "Namespace" "" .Release.Namespace }}
{{- $level := "" }}
{{- if and $ns $ns.metadata.labels }}
{{- $level = get $ns.metadata.labels "pod-security.kubernetes.io/enforce" }}
{{- end }}
{{- if and .Values.plugin.enabled $level (ne $level "privileged") }}
{{- fail (printf "namespace %s enforces Pod Security level %q, which rejects the privileged plugin pods; run: kubectl label --overwrite namespace %s pod-security.kubernetes.io/enforce=privileged (docs/install.md), or set preflight.enabled=false" .Release.Namespace $level .Release.Namespace) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
