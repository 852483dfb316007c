{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sellthrough.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name of the shared objects (ConfigMap, Secret, ServiceMonitor). */}}
{{- define "sellthrough.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one service's objects. Call with (dict "root" $ "name" <service>). */}}
{{- define "sellthrough.componentName" -}}
{{- printf "%s-%s" (include "sellthrough.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sellthrough.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sellthrough.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sellthrough
{{- end -}}

{{/* Labels that select one service's pods. Call with (dict "root" $ "name" <service>). */}}
{{- define "sellthrough.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sellthrough.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* All labels of one service's objects. Call with (dict "root" $ "name" <service>). */}}
{{- define "sellthrough.componentLabels" -}}
{{ include "sellthrough.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "sellthrough.secretName" -}}
{{- if .Values.secret.existingSecret -}}
{{- .Values.secret.existingSecret -}}
{{- else -}}
{{- include "sellthrough.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "sellthrough.kafkaBootstrapServers" -}}
{{- if .Values.kafka.bootstrapServers -}}
{{- .Values.kafka.bootstrapServers -}}
{{- else if .Values.kafka.strimzi.enabled -}}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" .Values.kafka.strimzi.clusterName (default .Release.Namespace .Values.kafka.strimzi.namespace) -}}
{{- else -}}
{{- fail "kafka.bootstrapServers is required (host:port[,host:port...] of your Kafka), unless kafka.strimzi.enabled" -}}
{{- end -}}
{{- end -}}

{{/* The topics as "name:partitions name:partitions ...", the form the topic Job reads. */}}
{{- define "sellthrough.topicSpecs" -}}
{{- $specs := list -}}
{{- range .Values.topics -}}
{{- $specs = append $specs (printf "%s:%d" .name (int .partitions)) -}}
{{- end -}}
{{- join " " $specs -}}
{{- end -}}

{{/* kafka.topicConfig as kafka-topics.sh arguments. */}}
{{- define "sellthrough.topicConfigArgs" -}}
{{- $args := list -}}
{{- range $key, $value := .Values.kafka.topicConfig -}}
{{- $args = append $args (printf "--config %s=%v" $key $value) -}}
{{- end -}}
{{- join " " $args -}}
{{- end -}}

{{/* A service's PostgreSQL role, and schema: its name with _ for -. Call with the service name. */}}
{{- define "sellthrough.dbRole" -}}
{{- replace "-" "_" . -}}
{{- end -}}

{{/* The Secret key of a service's database password. Call with the service name. */}}
{{- define "sellthrough.dbPasswordKey" -}}
{{- printf "DB_PASSWORD_%s" (upper (replace "-" "_" .)) -}}
{{- end -}}

{{/* DATABASE_URL of a service, with $(DB_PASSWORD) for Kubernetes to fill in from the env var of that name. */}}
{{- define "sellthrough.databaseUrl" -}}
{{- $db := .root.Values.database -}}
{{- $host := required "database.host is required (host:port of PostgreSQL)" $db.host -}}
{{- $url := printf "postgresql://%s:$(DB_PASSWORD)@%s/%s" (include "sellthrough.dbRole" .name) $host $db.name -}}
{{- if $db.options -}}
{{- $url = printf "%s?%s" $url $db.options -}}
{{- end -}}
{{- $url -}}
{{- end -}}

{{/* The image the database Jobs run: order-capture's, which has the runtime's command-line tools. */}}
{{- define "sellthrough.toolsImage" -}}
{{- printf "%s/order-capture:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Kafka security variables every Kafka client reads (README, "Kafka security"), as container env. */}}
{{- define "sellthrough.kafkaSecurityEnv" -}}
{{- $sec := .Values.kafka.security -}}
{{- if and (not $sec.secretName) (or $sec.saslUsernameKey $sec.saslPasswordKey $sec.caKey $sec.certKey $sec.keyKey $sec.keyPasswordKey) -}}
{{- fail "kafka.security.secretName is required when a kafka.security.*Key is set" -}}
{{- end }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $sec.protocol | quote }}
{{- with $sec.saslMechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- with $sec.saslUsernameKey }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $sec.secretName }}
      key: {{ . }}
{{- end }}
{{- with $sec.saslPasswordKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $sec.secretName }}
      key: {{ . }}
{{- end }}
{{- with $sec.keyPasswordKey }}
- name: KAFKA_SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $sec.secretName }}
      key: {{ . }}
{{- end }}
{{- if $sec.caKey }}
- name: KAFKA_SSL_CA_FILE
  value: {{ printf "%s/ca.pem" $sec.mountPath | quote }}
{{- end }}
{{- if $sec.certKey }}
- name: KAFKA_SSL_CERT_FILE
  value: {{ printf "%s/client.pem" $sec.mountPath | quote }}
{{- end }}
{{- if $sec.keyKey }}
- name: KAFKA_SSL_KEY_FILE
  value: {{ printf "%s/client.key" $sec.mountPath | quote }}
{{- end }}
{{- end -}}

{{/* Whether the Kafka Secret holds files to mount ("true" or ""). */}}
{{- define "sellthrough.kafkaTlsFiles" -}}
{{- $sec := .Values.kafka.security -}}
{{- if or $sec.caKey $sec.certKey $sec.keyKey -}}true{{- end -}}
{{- end -}}

{{/* The volume of the Kafka PEM files (only when sellthrough.kafkaTlsFiles). */}}
{{- define "sellthrough.kafkaTlsVolume" -}}
{{- $sec := .Values.kafka.security }}
- name: kafka-tls
  secret:
    secretName: {{ $sec.secretName }}
    # 0440: the key is readable by the pod's group (fsGroup) only, not by every user in the container.
    defaultMode: 288
    items:
      {{- with $sec.caKey }}
      - key: {{ . }}
        path: ca.pem
      {{- end }}
      {{- with $sec.certKey }}
      - key: {{ . }}
        path: client.pem
      {{- end }}
      {{- with $sec.keyKey }}
      - key: {{ . }}
        path: client.key
      {{- end }}
{{- end -}}
