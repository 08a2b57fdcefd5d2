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

{{/* The one image of both subcommands. */}}
{{- define "tessera.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
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
{{- if and .Values.extender.tls.enabled (not .Values.extender.tls.secretName) }}
{{- fail "extender.tls.secretName is required when extender.tls.enabled is true" }}
{{- end }}
{{- if and .Values.scheduler.enabled (not .Values.extender.enabled) }}
{{- fail "scheduler.enabled needs extender.enabled: the second scheduler calls the extender" }}
{{- end }}
{{- if gt (len .Values.driverName) 63 }}
{{- fail "driverName must be at most 63 characters (a DNS subdomain)" }}
{{- end }}
{{- end }}
