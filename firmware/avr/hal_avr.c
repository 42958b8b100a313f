/* ATmega328P at 18.432 MHz: a crystal that divides exactly into both 115200 baud and 1 ms. */
#include "hal.h"

#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <avr/wdt.h>

#include "../core/quadrature.h"

#define BAUD 115200UL
#define UBRR_VALUE ((F_CPU / (16UL * BAUD)) - 1UL)           /* 9: exact at 18.432 MHz */
#define TICK_OCR ((F_CPU / 256UL / 1000UL) - 1UL)            /* 71: Timer0, 1 kHz */
/* Modbus RTU above 19200 baud: a fixed 1.75 ms end-of-frame silence. Timer2 at F_CPU/128. */
#define SILENCE_OCR ((F_CPU / 128UL * 175UL / 100000UL) - 1UL) /* 251 */
#define ADC_MV_FULL_SCALE 5000UL                              /* AVCC reference */
#define SUPPLY_DIVIDER 6UL
#define TEMP_OFFSET_MV 500                                    /* MCP9700: 500 mV at 0 degC, 10 mV/degC */

#define DE_PIN PD4
#define ESTOP_PIN PD5
#define KEY_PIN PD6

#if TICK_OCR > 255 || SILENCE_OCR > 255
#error "F_CPU does not suit the 8-bit tick and silence timers"
#endif

rtu_rx_t hal_rx;

static volatile uint8_t ticks;
static volatile uint32_t encoder_count;
static uint8_t encoder_ab;
static uint8_t tx_buf[MB_RESPONSE_MAX];
static volatile uint8_t tx_len, tx_pos;
static volatile bool tx_busy;
static uint16_t adc_mv[3];
static uint8_t adc_channel;

static uint8_t encoder_state(void)
{
    uint8_t pins = PIND;
    return (uint8_t)((((pins >> PD2) & 1u) << 1) | ((pins >> PD3) & 1u));
}

ISR(INT0_vect)
{
    uint8_t ab = encoder_state();
    encoder_count += (uint32_t)(int32_t)quadrature_step(encoder_ab, ab);
    encoder_ab = ab;
}

ISR(INT1_vect, ISR_ALIASOF(INT0_vect));

ISR(TIMER0_COMPA_vect)
{
    if (ticks < UINT8_MAX) {
        ticks++;
    }
}

ISR(USART_RX_vect)
{
    uint8_t byte = UDR0;
    if (!tx_busy) {
        rtu_rx_byte(&hal_rx, byte);
    }
    TCNT2 = 0; /* restart the silence timer */
    TIFR2 = _BV(OCF2A);
    TIMSK2 |= _BV(OCIE2A);
}

ISR(TIMER2_COMPA_vect)
{
    TIMSK2 &= (uint8_t)~_BV(OCIE2A);
    rtu_rx_silence(&hal_rx);
}

ISR(USART_UDRE_vect)
{
    if (tx_pos < tx_len) {
        UDR0 = tx_buf[tx_pos++];
    } else {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
    }
}

ISR(USART_TX_vect)
{
    /* The last stop bit is on the wire: release the bus for the master's next request. The
     * check keeps the driver on should the flag rise between bytes (simavr raises it after
     * every byte; the chip only when both the buffer and the shift register are empty). */
    if (tx_pos == tx_len) {
        PORTD &= (uint8_t)~_BV(DE_PIN);
        tx_busy = false;
    }
}

static uint16_t adc_convert_blocking(uint8_t channel)
{
    ADMUX = (uint8_t)(_BV(REFS0) | channel);
    ADCSRA |= _BV(ADSC);
    while (ADCSRA & _BV(ADSC)) {
    }
    return (uint16_t)(ADC * ADC_MV_FULL_SCALE / 1023UL);
}

void hal_init(void)
{
    /* RS-485 driver enable low (listen), e-stop and key inputs with pull-ups: a broken wire
     * reads as "e-stop pressed" and "key removed", never as "all clear". */
    DDRD = _BV(DE_PIN);
    PORTD = _BV(ESTOP_PIN) | _BV(KEY_PIN);
    DDRB = _BV(PB1);

    UBRR0 = UBRR_VALUE;
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0) | _BV(TXCIE0);

    TCCR0A = _BV(WGM01);                /* CTC */
    OCR0A = TICK_OCR;
    TCCR0B = _BV(CS02);                 /* /256 */
    TIMSK0 = _BV(OCIE0A);

    TCCR2A = _BV(WGM21);                /* CTC; interrupt enabled per received byte */
    OCR2A = SILENCE_OCR;
    TCCR2B = _BV(CS22) | _BV(CS20);     /* /128 */

    ICR1 = HAL_PWM_TOP;                 /* fast PWM, TOP = ICR1, non-inverting on OC1A */
    OCR1A = 0;
    TCCR1A = _BV(COM1A1) | _BV(WGM11);
    TCCR1B = _BV(WGM13) | _BV(WGM12) | _BV(CS10);

    EICRA = _BV(ISC10) | _BV(ISC00);    /* INT0, INT1 on any edge */
    EIMSK = _BV(INT0) | _BV(INT1);
    encoder_ab = encoder_state();

    ADCSRA = _BV(ADEN) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0); /* 144 kHz ADC clock */
    for (uint8_t ch = 0; ch < 3; ch++) {
        adc_mv[ch] = adc_convert_blocking(ch); /* valid readings before the first tick */
    }
    adc_channel = 0;
    ADMUX = _BV(REFS0);
    ADCSRA |= _BV(ADSC);

    rtu_rx_init(&hal_rx);
    wdt_enable(WDTO_60MS);              /* a hung main loop resets the chip: coil off */
    sei();
}

uint8_t hal_take_ticks(void)
{
    cli();
    uint8_t n = ticks;
    ticks = 0;
    sei();
    return n;
}

uint32_t hal_encoder_count(void)
{
    cli();
    uint32_t count = encoder_count;
    sei();
    return count;
}

void hal_read_inputs(board_inputs_t *in)
{
    /* One channel per millisecond, round robin: each is at most 3 ms old. */
    if (!(ADCSRA & _BV(ADSC))) {
        adc_mv[adc_channel] = (uint16_t)(ADC * ADC_MV_FULL_SCALE / 1023UL);
        adc_channel = (uint8_t)((adc_channel + 1u) % 3u);
        ADMUX = (uint8_t)(_BV(REFS0) | adc_channel);
        ADCSRA |= _BV(ADSC);
    }
    uint8_t pins = PIND;
    in->estop_pressed = (pins & _BV(ESTOP_PIN)) != 0;
    in->safety_key_present = (pins & _BV(KEY_PIN)) == 0;
    in->coil_current_ma = adc_mv[0];
    in->temp_dc = (int16_t)((int16_t)adc_mv[1] - TEMP_OFFSET_MV);
    in->supply_mv = (uint16_t)(adc_mv[2] * SUPPLY_DIVIDER);
}

void hal_set_coil_duty(uint16_t duty)
{
    OCR1A = duty > HAL_PWM_TOP ? HAL_PWM_TOP : duty;
}

void hal_send(const uint8_t *data, uint16_t len)
{
    if (len > MB_RESPONSE_MAX) {
        return;
    }
    for (uint16_t i = 0; i < len; i++) {
        tx_buf[i] = data[i];
    }
    tx_len = (uint8_t)len;
    tx_pos = 0;
    tx_busy = true;
    PORTD |= _BV(DE_PIN);
    UCSR0A = _BV(TXC0);                 /* clear a stale transmit-complete flag */
    UCSR0B |= _BV(UDRIE0);
}

bool hal_sending(void)
{
    return tx_busy;
}

void hal_idle(bool work_pending)
{
    set_sleep_mode(SLEEP_MODE_IDLE);
    cli();
    if (!work_pending && !ticks && !hal_rx.ready) {
        sleep_enable();
        sei();
        sleep_cpu();
        sleep_disable();
    }
    sei();
}

void hal_feed_watchdog(void)
{
    wdt_reset();
}
